package dev.collie.optim;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class DynamicLossScalerTest {
    @Test
    void defaultsStartAt2To16() {
        DynamicLossScaler s = new DynamicLossScaler();
        assertEquals(65536.0, s.scale());
        for (int i = 0; i < 999; i++) {
            s.update(false);
        }
        assertEquals(65536.0, s.scale());
        s.update(false);
        assertEquals(131072.0, s.scale(), "doubles after a window of 1000 clean steps");
    }

    @Test
    void overflowHalvesTheScaleAndRestartsTheWindow() {
        DynamicLossScaler s = new DynamicLossScaler(1024, 2, 3, 1);
        s.update(false);
        s.update(false);
        s.update(true);
        assertEquals(512, s.scale());
        assertEquals(0, s.cleanSteps());
        s.update(false);
        s.update(false);
        assertEquals(512, s.scale());
        s.update(false);
        assertEquals(1024, s.scale());
    }

    @Test
    void scaleNeverDropsBelowTheMinimumAndOverflowThereIsAnError() {
        DynamicLossScaler s = new DynamicLossScaler(3, 2, 10, 1);
        s.update(true);
        assertEquals(1.5, s.scale());
        s.update(true);
        assertEquals(1.0, s.scale());
        CollieException e = assertThrows(CollieException.class, () -> s.update(true));
        assertEquals("loss scaler: gradients overflow at the minimum loss scale 1.0; the run diverged"
                + " (lower the learning rate or train in fp32/bf16)", e.getMessage());
    }

    @Test
    void badSettingsAreRefused() {
        assertThrows(CollieException.class, () -> new DynamicLossScaler(0.5, 2, 10, 1));
        assertThrows(CollieException.class, () -> new DynamicLossScaler(8, 1, 10, 1));
        assertThrows(CollieException.class, () -> new DynamicLossScaler(8, 2, 0, 1));
    }
}
