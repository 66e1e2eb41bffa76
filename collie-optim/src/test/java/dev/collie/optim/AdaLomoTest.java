package dev.collie.optim;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Parameter;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AdaLomoTest {
    private static final int M = 4;
    private static final int N = 6;

    private static double rms(double[] x) {
        double s = 0;
        for (double v : x) {
            s += v * v;
        }
        return Math.sqrt(s / x.length);
    }

    /** The rule written out on doubles: a factored matrix and a full vector. */
    @Test
    void matrixAndVectorUpdatesEqualTheWrittenOutRule() {
        Nd4j.getRandom().setSeed(4);
        INDArray w0 = Nd4j.randn(DataType.DOUBLE, M, N).muli(0.1);
        INDArray b0 = Nd4j.randn(DataType.DOUBLE, N);
        Parameter w = new Parameter(w0.dup());
        Parameter b = new Parameter(b0.dup());
        Map<String, Parameter> params = new LinkedHashMap<>();
        params.put("w", w);
        params.put("b", b);
        double eps1 = 1e-30;
        double eps2 = 1e-3;
        double clip = 0.5;
        double decay = -0.8;
        double wd = 0.1;
        double lr = 0.05;
        AdaLomo opt = new AdaLomo(params, eps1, eps2, clip, decay, 0, 0, wd);
        double[] tw = Drive.values(w0);
        double[] tb = Drive.values(b0);
        double[] r = new double[M];
        double[] c = new double[N];
        double[] v = new double[N];
        for (int t = 1; t <= 5; t++) {
            INDArray gw = Nd4j.randn(DataType.DOUBLE, M, N).muli(t == 3 ? 1e-3 : 1.0);
            INDArray gb = Nd4j.randn(DataType.DOUBLE, N);
            double[] g = Drive.values(gw);
            double[] h = Drive.values(gb);
            Drive.fusedStep(opt, lr, List.of(w, b), List.of(gw, gb));
            double beta = 1 - Math.pow(t, decay);
            double[] u = new double[M * N];
            for (int i = 0; i < M; i++) {
                double s = 0;
                for (int j = 0; j < N; j++) {
                    s += g[i * N + j] * g[i * N + j] + eps1;
                }
                r[i] = beta * r[i] + (1 - beta) * s / N;
            }
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int i = 0; i < M; i++) {
                    s += g[i * N + j] * g[i * N + j] + eps1;
                }
                c[j] = beta * c[j] + (1 - beta) * s / M;
            }
            double meanR = 0;
            for (double x : r) {
                meanR += x / M;
            }
            for (int i = 0; i < M; i++) {
                for (int j = 0; j < N; j++) {
                    u[i * N + j] = g[i * N + j] / Math.sqrt(r[i] / meanR * c[j]);
                }
            }
            double[] ub = new double[N];
            for (int j = 0; j < N; j++) {
                v[j] = beta * v[j] + (1 - beta) * (h[j] * h[j] + eps1);
                ub[j] = h[j] / Math.sqrt(v[j]);
            }
            for (double[][] pu : new double[][][] {{tw, u}, {tb, ub}}) {
                double[] theta = pu[0];
                double[] upd = pu[1];
                double shrink = Math.max(1, rms(upd) / clip);
                double lrT = lr * Math.max(eps2, rms(theta));
                for (int i = 0; i < theta.length; i++) {
                    theta[i] = theta[i] * (1 - lrT * wd) - lrT * upd[i] / shrink;
                }
            }
            assertTrue(Drive.maxDiff(w.data(), tw) < 1e-13, "matrix at step " + t);
            assertTrue(Drive.maxDiff(b.data(), tb) < 1e-13, "vector at step " + t);
        }
        assertEquals((M + N + N) * 8, opt.stateBytes(), "factored: one number per row and column");
        assertEquals(0, w.gradientBufferBytes());
    }

    @Test
    void firstStepNormalisesEachElementByItsOwnGradient() {
        // β2t = 1 − 1^−0.8 = 0: the second moment is the current g², so u = sign(g) for a vector
        Parameter b = new Parameter(Nd4j.createFromArray(1.0, -1.0, 1.0, -1.0));
        AdaLomo opt = new AdaLomo(Map.of("b", b));
        Drive.fusedStep(opt, 0.1, List.of(b), List.of(Nd4j.createFromArray(3.0, -0.01, 1e-4, 2.0)));
        assertTrue(Drive.maxDiff(b.data(), new double[] {0.9, -0.9, 0.9, -1.1}) < 1e-12, b.data().toString());
    }

    @Test
    void positiveDecayRateIsRefused() {
        Parameter b = new Parameter(Nd4j.zeros(DataType.FLOAT, 2));
        assertThrows(CollieException.class, () -> new AdaLomo(Map.of("b", b), 1e-30, 1e-3, 1, 0.8, 0, 0, 0));
    }
}
