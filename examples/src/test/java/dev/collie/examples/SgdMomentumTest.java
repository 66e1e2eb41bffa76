package dev.collie.examples;

import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SgdMomentumTest {
    @Test
    void updateIsHeavyBallMomentumAsInTorchSgd() {
        Nd4j.getRandom().setSeed(1);
        INDArray start = Nd4j.randn(DataType.DOUBLE, 3, 4);
        Parameter p = new Parameter(start.dup());
        SgdMomentum opt = new SgdMomentum(Map.of("w", p), 0.8);
        double[] theta = start.reshape(12).toDoubleVector();
        double[] buf = new double[12];
        for (int t = 1; t <= 5; t++) {
            INDArray g = Nd4j.randn(DataType.DOUBLE, 3, 4);
            double[] gv = g.reshape(12).toDoubleVector();
            Tape tape = Tape.forTraining(1, 1);
            tape.use(p);
            p.accumulateGrad(tape, g.dup());
            opt.step(0.1);
            for (int i = 0; i < 12; i++) {
                buf[i] = t == 1 ? gv[i] : 0.8 * buf[i] + gv[i];
                theta[i] -= 0.1 * buf[i];
            }
            double[] got = p.data().reshape(12).toDoubleVector();
            for (int i = 0; i < 12; i++) {
                assertTrue(Math.abs(got[i] - theta[i]) < 1e-14, "step " + t + " element " + i);
            }
        }
        assertEquals(12 * 8, opt.stateBytes());
    }
}
