package dev.collie.optim;

import dev.collie.core.nn.Parameter;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AdanTest {
    /** The rule written out on doubles, for two parameters sharing one global clip. */
    private static void check(boolean noProx, double maxGradNorm) {
        Nd4j.getRandom().setSeed(5);
        INDArray a0 = Nd4j.randn(DataType.DOUBLE, 3, 5);
        INDArray b0 = Nd4j.randn(DataType.DOUBLE, 7);
        Parameter a = new Parameter(a0.dup());
        Parameter b = new Parameter(b0.dup());
        Map<String, Parameter> params = new LinkedHashMap<>();
        params.put("a", a);
        params.put("b", b);
        double b1 = 0.98;
        double b2 = 0.92;
        double b3 = 0.99;
        double eps = 1e-8;
        double wd = 0.05;
        double lr = 1e-2;
        Adan opt = new Adan(params, b1, b2, b3, eps, wd, maxGradNorm, noProx);
        double[][] theta = {Drive.values(a0), Drive.values(b0)};
        double[][] m = {new double[15], new double[7]};
        double[][] v = {new double[15], new double[7]};
        double[][] n = {new double[15], new double[7]};
        double[][] prev = new double[2][];
        for (int t = 1; t <= 6; t++) {
            INDArray ga = Nd4j.randn(DataType.DOUBLE, 3, 5).muli(t);
            INDArray gb = Nd4j.randn(DataType.DOUBLE, 7).muli(t);
            double[][] g = {Drive.values(ga), Drive.values(gb)};
            Drive.deliver(a, ga);
            Drive.deliver(b, gb);
            opt.step(lr);
            double sq = 0;
            for (double[] gi : g) {
                for (double x : gi) {
                    sq += x * x;
                }
            }
            double c = maxGradNorm > 0 ? Math.min(1, maxGradNorm / (Math.sqrt(sq) + eps)) : 1;
            for (int k = 0; k < 2; k++) {
                for (int i = 0; i < g[k].length; i++) {
                    double gi = g[k][i] * c;
                    double d = prev[k] == null ? 0 : gi - prev[k][i];
                    m[k][i] = b1 * m[k][i] + (1 - b1) * gi;
                    v[k][i] = b2 * v[k][i] + (1 - b2) * d;
                    double u = gi + b2 * d;
                    n[k][i] = b3 * n[k][i] + (1 - b3) * u * u;
                    double denom = Math.sqrt(n[k][i]) / Math.sqrt(1 - Math.pow(b3, t)) + eps;
                    if (noProx) {
                        theta[k][i] *= 1 - lr * wd;
                    }
                    theta[k][i] -= lr / (1 - Math.pow(b1, t)) * m[k][i] / denom;
                    theta[k][i] -= lr * b2 / (1 - Math.pow(b2, t)) * v[k][i] / denom;
                    if (!noProx) {
                        theta[k][i] /= 1 + lr * wd;
                    }
                    g[k][i] = gi;
                }
                prev[k] = g[k];
            }
            assertTrue(Drive.maxDiff(a.data(), theta[0]) < 1e-12, "a at step " + t);
            assertTrue(Drive.maxDiff(b.data(), theta[1]) < 1e-12, "b at step " + t);
        }
        assertEquals(4 * 22 * 8, opt.stateBytes());
    }

    @Test
    void proximalUpdateWithGlobalClipEqualsTheWrittenOutRule() {
        check(false, 1.0);
    }

    @Test
    void noProxDecaysBeforeTheUpdateAndNoClipLeavesGradientsAlone() {
        check(true, 0.0);
    }

    @Test
    void firstStepSeesNoGradientDifferenceAndRemembersTheNegatedGradient() {
        Parameter p = new Parameter(Nd4j.createFromArray(1.0, 2.0));
        Adan opt = new Adan(Map.of("w", p));
        Drive.deliver(p, Nd4j.createFromArray(0.5, -0.25));
        opt.step(1e-3);
        Map<String, INDArray> s = opt.stateDict();
        assertEquals(Nd4j.createFromArray(0.0, 0.0), s.get("w.exp_avg_diff"));
        assertEquals(Nd4j.createFromArray(-0.5, 0.25), s.get("w.neg_pre_grad"));
    }
}
