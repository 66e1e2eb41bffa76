package dev.collie.optim;

import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AdamWTest {
    @Test
    void fusedUpdateEqualsTheWrittenOutRuleOverManySteps() {
        Nd4j.getRandom().setSeed(3);
        INDArray start = Nd4j.randn(DataType.DOUBLE, 5, 7);
        Parameter p = new Parameter(start.dup());
        AdamW opt = new AdamW(Map.of("w", p), 0.9, 0.95, 1e-8, 0.1);
        INDArray ref = start.dup();
        INDArray m = Nd4j.zeros(DataType.DOUBLE, 5, 7);
        INDArray v = Nd4j.zeros(DataType.DOUBLE, 5, 7);
        for (int step = 1; step <= 20; step++) {
            INDArray g = Nd4j.randn(DataType.DOUBLE, 5, 7).muli(step % 3 == 0 ? 1e-4 : 1.0);
            Tape t = Tape.forTraining(1, 1);
            t.use(p);
            p.accumulateGrad(t, g.dup());
            opt.step(1e-2);
            AdamW.referenceUpdate(ref, g, m, v, 1e-2, step, 0.9, 0.95, 1e-8, 0.1);
            double diff = p.data().sub(ref).amaxNumber().doubleValue();
            assertTrue(diff < 1e-12, "step " + step + " differs by " + diff);
        }
        assertEquals(20, opt.steps());
        assertEquals(2 * 35 * 8, opt.stateBytes());
    }
}
