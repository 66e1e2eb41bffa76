package dev.collie.core.optim;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The schedules follow Hugging Face's get_*_schedule_with_warmup, evaluated at optimizer step s. */
class LrScheduleTest {
    @Test
    void warmupRisesLinearlyThenConstantHolds() {
        LrSchedule s = LrSchedule.constant(1.0, 4);
        assertEquals(0.25, s.at(0), 1e-12);
        assertEquals(1.0, s.at(3), 1e-12);
        assertEquals(1.0, s.at(100), 1e-12);
    }

    @Test
    void linearDecaysToZeroAtTheLastStep() {
        LrSchedule s = LrSchedule.linear(2.0, 0, 10);
        assertEquals(2.0, s.at(0), 1e-12);
        assertEquals(1.0, s.at(5), 1e-12);
        assertEquals(0.0, s.at(10), 1e-12);
    }

    @Test
    void cosineIsHalfWayAtTheMiddleOfDecay() {
        LrSchedule s = LrSchedule.cosine(1.0, 2, 12);
        assertEquals(1.0, s.at(2), 1e-12);
        assertEquals(0.5, s.at(7), 1e-12);
        assertEquals(0.0, s.at(12), 1e-12);
    }

    @Test
    void unknownScheduleNamesTheField() {
        var e = assertThrows(CollieException.class, () -> LrSchedule.named("exp", 1, 0, 1));
        assertEquals("lr_schedule: unknown schedule 'exp' (expected constant, linear or cosine)", e.getMessage());
    }
}
