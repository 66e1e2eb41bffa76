package dev.collie.core.optim;

import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class GradClipTest {
    private static Parameter withGrad(double... g) {
        Parameter p = new Parameter(Nd4j.zeros(DataType.DOUBLE, g.length));
        Tape t = Tape.forTraining(1, 1);
        t.use(p);
        p.accumulateGrad(t, Nd4j.createFromArray(g));
        return p;
    }

    @Test
    void clipsToTheMaximumGlobalNormAsPyTorchDoes() {
        Parameter a = withGrad(3, 0);
        Parameter b = withGrad(0, 4);
        double norm = GradClip.clipGlobalNorm(List.of(a, b), 1.0);
        assertEquals(5.0, norm, 1e-12);
        assertEquals(1.0, GradClip.globalNorm(List.of(a, b)), 1e-6);
        assertEquals(3.0 / (5 + 1e-6), a.grad().getDouble(0), 1e-12);
    }

    @Test
    void leavesSmallGradientsAlone() {
        Parameter a = withGrad(0.3, 0.4);
        GradClip.clipGlobalNorm(List.of(a), 1.0);
        assertEquals(0.3, a.grad().getDouble(0), 1e-12);
    }
}
