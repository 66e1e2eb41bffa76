package dev.collie.optim;

import dev.collie.core.nn.Parameter;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LionTest {
    @Test
    void updateEqualsTheWrittenOutRuleOverManySteps() {
        Nd4j.getRandom().setSeed(11);
        INDArray start = Nd4j.randn(DataType.DOUBLE, 4, 6);
        Parameter p = new Parameter(start.dup());
        Lion opt = new Lion(Map.of("w", p), 0.9, 0.99, 0.1);
        double[] theta = Drive.values(start);
        double[] m = new double[theta.length];
        double lr = 1e-2;
        for (int step = 1; step <= 10; step++) {
            INDArray g = Nd4j.randn(DataType.DOUBLE, 4, 6);
            double[] gv = Drive.values(g);
            Drive.deliver(p, g);
            opt.step(lr);
            for (int i = 0; i < theta.length; i++) {
                theta[i] *= 1 - lr * 0.1;
                theta[i] -= lr * Math.signum(0.9 * m[i] + 0.1 * gv[i]);
                m[i] = 0.99 * m[i] + 0.01 * gv[i];
            }
            assertTrue(Drive.maxDiff(p.data(), theta) < 1e-14, "step " + step);
        }
        assertEquals(24 * 8, opt.stateBytes());
    }

    @Test
    void everyElementMovesByExactlyTheLearningRateExceptWhereTheGradientIsZero() {
        Parameter p = new Parameter(Nd4j.createFromArray(1f, 1f, 1f));
        Lion opt = new Lion(Map.of("w", p));
        Drive.deliver(p, Nd4j.createFromArray(1e-20f, -3f, 0f));
        opt.step(0.5);
        assertEquals(Nd4j.createFromArray(0.5f, 1.5f, 1f), p.data());
    }
}
