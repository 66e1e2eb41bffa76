package dev.collie.optim;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Parameter;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SophiaGTest {
    @Test
    void withoutAHessianTheStepIsSignMomentum() {
        Parameter p = new Parameter(Nd4j.createFromArray(1.0, 1.0, 1.0));
        SophiaG opt = new SophiaG(Map.of("w", p), 0.9, 0.99, 0.04, 0.0, 5120, 10);
        Drive.deliver(p, Nd4j.createFromArray(1e-3, -2.0, 0.0));
        opt.step(0.1);
        assertEquals(Nd4j.createFromArray(0.9, 1.1, 1.0), p.data());
    }

    @Test
    void hessianIsAnEmaOfSquaredGradientsThatBoundsTheStep() {
        Nd4j.getRandom().setSeed(8);
        INDArray start = Nd4j.randn(DataType.DOUBLE, 4, 5);
        Parameter p = new Parameter(start.dup());
        double b1 = 0.965;
        double b2 = 0.99;
        double rho = 0.04;
        double wd = 0.1;
        double bs = 50;
        double lr = 1e-2;
        SophiaG opt = new SophiaG(Map.of("w", p), b1, b2, rho, wd, bs, 2);
        double[] theta = Drive.values(start);
        double[] m = new double[20];
        double[] h = new double[20];
        int unsaturated = 0;
        for (int t = 1; t <= 8; t++) {
            INDArray g = Nd4j.randn(DataType.DOUBLE, 4, 5);
            double[] gv = Drive.values(g);
            Drive.deliver(p, g);
            opt.step(lr);
            for (int i = 0; i < 20; i++) {
                theta[i] *= 1 - lr * wd;
                m[i] = b1 * m[i] + (1 - b1) * gv[i];
                double ratio = Math.min(Math.abs(m[i]) / (rho * bs * h[i] + 1e-15), 1);
                unsaturated += ratio < 1 ? 1 : 0;
                theta[i] -= lr * Math.signum(m[i]) * ratio;
            }
            assertTrue(Drive.maxDiff(p.data(), theta) < 1e-12, "step " + t);
            p.zeroGrad();
            if (t % opt.hessianInterval() == 0) {
                INDArray gh = Nd4j.randn(DataType.DOUBLE, 4, 5);
                double[] ghv = Drive.values(gh);
                Drive.deliver(p, gh);
                opt.updateHessian();
                p.zeroGrad();
                for (int i = 0; i < 20; i++) {
                    h[i] = b2 * h[i] + (1 - b2) * ghv[i] * ghv[i];
                }
                assertTrue(Drive.maxDiff(opt.stateDict().get("w.hessian"), h) < 1e-15);
            }
        }
        assertTrue(unsaturated > 20, "the Hessian never bounded a step: " + unsaturated);
        assertEquals(4, opt.hessianUpdates());
        assertEquals(2 * 20 * 8, opt.stateBytes());
    }

    @Test
    void hessianIntervalMustBePositive() {
        Parameter p = new Parameter(Nd4j.zeros(DataType.FLOAT, 2));
        CollieException e = assertThrows(CollieException.class,
                () -> new SophiaG(Map.of("w", p), 0.965, 0.99, 0.04, 0.1, 5120, 0));
        assertTrue(e.getMessage().contains("hessian interval"), e.getMessage());
    }
}
