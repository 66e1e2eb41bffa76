package dev.collie.optim;

import dev.collie.core.nn.Parameter;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LomoTest {
    private static Map<String, Parameter> named(Parameter... ps) {
        Map<String, Parameter> m = new LinkedHashMap<>();
        for (int i = 0; i < ps.length; i++) {
            m.put("p" + i, ps[i]);
        }
        return m;
    }

    @Test
    void onePassIsSgdWithDecayAndFreesEachGradientAtOnce() {
        Parameter a = new Parameter(Nd4j.createFromArray(1.0, 2.0));
        Parameter b = new Parameter(Nd4j.createFromArray(new double[][] {{3.0}}));
        Lomo opt = new Lomo(named(a, b), 0, 0, 0.5, null);
        assertEquals(1, opt.passes());
        Drive.fusedStep(opt, 0.1, List.of(a, b),
                List.of(Nd4j.createFromArray(1.0, -1.0), Nd4j.createFromArray(new double[][] {{2.0}})));
        assertEquals(Nd4j.createFromArray(1.0 * 0.95 - 0.1, 2.0 * 0.95 + 0.1), a.data());
        assertEquals(3.0 * 0.95 - 0.2, b.data().getDouble(0), 1e-15);
        assertEquals(0, a.gradientBufferBytes());
        assertEquals(0, b.gradientBufferBytes());
        assertEquals(0, opt.stateBytes());
    }

    @Test
    void normClipTakesTwoPassesAndScalesByTheGlobalNormOfUnclippedGradients() {
        Parameter a = new Parameter(Nd4j.createFromArray(0.0, 0.0));
        Parameter b = new Parameter(Nd4j.createFromArray(0.0));
        Lomo opt = new Lomo(named(a, b), 1.0, 2.5, 0, null);
        assertEquals(2, opt.passes());
        // unclipped norm = sqrt(9 + 16 + 144) = 13; value clip to ±2.5 comes first, then the 1/13 coefficient
        Drive.fusedStep(opt, 1.0, List.of(a, b), List.of(Nd4j.createFromArray(3.0, -4.0), Nd4j.createFromArray(12.0)));
        assertEquals(13.0, opt.lastGradNorm(), 1e-12);
        double coef = 1.0 / (13.0 + 1e-6);
        assertEquals(-2.5 * coef, a.data().getDouble(0), 1e-15);
        assertEquals(2.5 * coef, a.data().getDouble(1), 1e-15);
        assertEquals(-2.5 * coef, b.data().getDouble(0), 1e-15);
        assertEquals(0, a.gradientBufferBytes());
    }

    @Test
    void normBelowTheThresholdLeavesGradientsUnscaled() {
        Parameter a = new Parameter(Nd4j.createFromArray(0.0, 0.0));
        Lomo opt = new Lomo(named(a), 10.0, 0, 0, null);
        Drive.fusedStep(opt, 1.0, List.of(a), List.of(Nd4j.createFromArray(3.0, -4.0)));
        assertEquals(Nd4j.createFromArray(-3.0, 4.0), a.data());
    }

    @Test
    void aNonFiniteGradientIsNeverApplied() {
        // one pass: the parameter with the NaN gradient keeps its value, the other is updated, the step is withheld
        Parameter a = new Parameter(Nd4j.createFromArray(1.0, 2.0));
        Parameter b = new Parameter(Nd4j.createFromArray(3.0));
        Lomo one = new Lomo(named(a, b), 0, 0, 0, null);
        Drive.fusedStep(one, 0.5, List.of(a, b), List.of(Nd4j.createFromArray(Double.NaN, 1.0),
                Nd4j.createFromArray(2.0)));
        assertEquals(Nd4j.createFromArray(1.0, 2.0), a.data());
        assertEquals(2.0, b.data().getDouble(0), 1e-15);
        assertTrue(one.withheldLastStep());
        assertEquals(0, a.gradientBufferBytes(), "the gradient is freed all the same");
        Drive.fusedStep(one, 0.5, List.of(a, b), List.of(Nd4j.createFromArray(2.0, 2.0), Nd4j.createFromArray(2.0)));
        assertFalse(one.withheldLastStep(), "the next step starts clean");
        assertEquals(Nd4j.createFromArray(0.0, 1.0), a.data());

        // two passes (norm clipping, no loss scaler): an infinite gradient anywhere withholds the whole step
        Parameter c = new Parameter(Nd4j.createFromArray(1.0, 2.0));
        Parameter d = new Parameter(Nd4j.createFromArray(3.0));
        Lomo two = new Lomo(named(c, d), 1.0, 0, 0, null);
        Drive.fusedStep(two, 0.5, List.of(c, d), List.of(Nd4j.createFromArray(1.0, 1.0),
                Nd4j.createFromArray(Double.POSITIVE_INFINITY)));
        assertEquals(Nd4j.createFromArray(1.0, 2.0), c.data());
        assertEquals(3.0, d.data().getDouble(0), 1e-15);
        assertTrue(two.withheldLastStep());
        assertEquals(1, two.skippedSteps());
    }

    @Test
    void lossScalerUnscalesGradientsAndSkipsAStepThatOverflows() {
        Parameter a = new Parameter(Nd4j.createFromArray(1.0f, 1.0f));
        DynamicLossScaler scaler = new DynamicLossScaler(1024, 2, 1000, 1);
        Lomo opt = new Lomo(named(a), 0, 0, 0, scaler);
        assertEquals(2, opt.passes(), "the first pass looks for an overflow");
        assertEquals(1024, opt.lossScale());
        // the caller scaled the loss by 1024, so the gradient arrives scaled
        Drive.fusedStep(opt, 0.5, List.of(a), List.of(Nd4j.createFromArray(1024f, -2048f)));
        assertEquals(Nd4j.createFromArray(0.5f, 2.0f), a.data());
        assertEquals(1, scaler.cleanSteps());
        Drive.fusedStep(opt, 0.5, List.of(a), List.of(Nd4j.createFromArray(Float.POSITIVE_INFINITY, 1f)));
        assertEquals(Nd4j.createFromArray(0.5f, 2.0f), a.data(), "the overflowing step is skipped");
        assertEquals(512, scaler.scale());
        assertEquals(1, opt.skippedSteps());
        assertEquals(0, a.gradientBufferBytes());
        assertEquals(1024, opt.lossScale(), "the scale stays fixed until the step ends");
        opt.beginStep(0.5);
        assertEquals(512, opt.lossScale(), "the next step's loss is scaled by the halved scale");
    }

    @Test
    void equalsPlainSgdOnARandomProblemOverManySteps() {
        Nd4j.getRandom().setSeed(2);
        INDArray start = Nd4j.randn(DataType.DOUBLE, 6, 4);
        Parameter a = new Parameter(start.dup());
        Lomo opt = new Lomo(named(a));
        double[] theta = Drive.values(start);
        for (int t = 0; t < 5; t++) {
            INDArray g = Nd4j.randn(DataType.DOUBLE, 6, 4);
            double[] gv = Drive.values(g);
            Drive.fusedStep(opt, 0.3, List.of(a), List.of(g));
            for (int i = 0; i < theta.length; i++) {
                theta[i] -= 0.3 * gv[i];
            }
        }
        assertTrue(Drive.maxDiff(a.data(), theta) < 1e-14);
        assertEquals(5, opt.steps());
    }
}
