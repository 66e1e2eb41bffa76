package dev.collie.core.tensor;

import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/**
 * The fused Vector API kernels against ND4J's (today's path, float32) and against the same math in float64: bit for
 * bit where both round the same products in the same order (rotary, the decay-and-step), else within a few float32
 * ulps of the float64 result, on rows whose length is not a multiple of the SIMD width and on views with offsets.
 */
@NumericalParity
class VectorKernelsTest {
    private static final Kernels ND4J = Nd4jKernels.INSTANCE;
    private static final Kernels VEC = new VectorKernels(Nd4jKernels.INSTANCE);
    /** A few float32 ulps of the largest value: the kernels round each element a handful of times. */
    private static final double ULPS = 8 * Math.ulp(1f);
    private static final int[] WIDTHS = {83, 768};

    private static INDArray f64(INDArray x) {
        return x.castTo(DataType.DOUBLE);
    }

    /** max |got − want| ≤ bound · max |want|, recorded for the agreement log. */
    private static void close(String what, INDArray want, INDArray got, double bound) {
        assertArrayEquals(want.shape(), got.shape(), what);
        assertEquals(DataType.FLOAT, got.dataType(), what);
        double scale = want.castTo(DataType.DOUBLE).amaxNumber().doubleValue();
        double diff = want.castTo(DataType.DOUBLE).sub(got.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
        Agreement.within(what, diff / scale, bound);
    }

    /** Rows {@code [rows, n]} as a view with an offset into a larger array (the kernels read through offsets). */
    private static INDArray rows(int rows, int n, long seed) {
        Nd4j.getRandom().setSeed(seed);
        return Nd4j.randn(DataType.FLOAT, rows + 3, n).get(interval(2, 2 + rows), all());
    }

    @Test
    void theBuildsTestsRunTheVectorKernels() {
        assertTrue(Backends.elementwiseEngine().startsWith("Vector API"),
                "surefire starts the JVM with --add-modules jdk.incubator.vector: " + Backends.elementwiseEngine());
    }

    /** e^x within 2 float32 ulps on the range that matters, and the lanes and a row's tail agree bit for bit. */
    @Test
    void expIsAccurateAndTheSameInLanesAndTails() {
        int n = 1 << 16;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = -87f + 175f * i / n;
        }
        float[] lanes = new float[n];
        var species = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;
        for (int i = 0; i < n; i += species.length()) {
            VectorKernels.exp(jdk.incubator.vector.FloatVector.fromArray(species, x, i)).intoArray(lanes, i);
        }
        double worst = 0;
        for (int i = 0; i < n; i++) {
            float want = (float) Math.exp(x[i]);
            worst = Math.max(worst, Math.abs(lanes[i] - want) / Math.ulp(want));
            assertEquals(Float.floatToRawIntBits(lanes[i]), Float.floatToRawIntBits(VectorKernels.exp(x[i])),
                    "exp(" + x[i] + ")");
        }
        Agreement.within("exp in float32 ulps", worst, 2);
        assertEquals(0f, VectorKernels.exp(-1e9f));
        assertEquals(Float.POSITIVE_INFINITY, VectorKernels.exp(100f));
        assertTrue(Float.isNaN(VectorKernels.exp(Float.NaN)));
    }

    /**
     * The same inputs give the same bits on the first calls (interpreted, C1) and after the JIT compiler's C2 took
     * over: the Vector API's own exp and lane sums would not (SVML and a tree of adds in compiled code only).
     */
    @Test
    void resultsDoNotChangeWhenTheCompilerTakesOver() {
        INDArray x = rows(4, 83, 60).muli(3);
        INDArray b = rows(4, 83, 61);
        INDArray p0 = VEC.softmax(x);
        INDArray s0 = VEC.siluMul(x, b);
        INDArray[] r0 = VEC.rmsNorm(x, b.getRow(0), 1e-5);
        for (int k = 0; k < 3000; k++) {
            assertEquals(p0, VEC.softmax(x), "softmax, call " + k);
            assertEquals(s0, VEC.siluMul(x, b), "siluMul, call " + k);
            assertEquals(r0[0], VEC.rmsNorm(x, b.getRow(0), 1e-5)[0], "rmsNorm, call " + k);
        }
    }

    @Test
    void rmsNormForwardAndBackward() {
        for (int n : WIDTHS) {
            INDArray x = rows(7, n, 1);
            INDArray w = Nd4j.rand(DataType.FLOAT, n).addi(0.5);
            INDArray[] want = ND4J.rmsNorm(f64(x), f64(w), 1e-5);
            INDArray[] got = VEC.rmsNorm(x, w, 1e-5);
            for (int i = 0; i < 3; i++) {
                close("rmsNorm output " + i + " n=" + n, want[i], got[i], ULPS);
            }
            INDArray dy = rows(7, n, 2);
            INDArray[] wantB = ND4J.rmsNormBackward(f64(dy), want[1], want[2], f64(w), true);
            INDArray[] gotB = VEC.rmsNormBackward(dy, got[1], got[2], w, true);
            close("rmsNorm dx n=" + n, wantB[0], gotB[0], 4 * ULPS);
            close("rmsNorm dweight n=" + n, wantB[1], gotB[1], 4 * ULPS);
            assertNull(VEC.rmsNormBackward(dy, got[1], got[2], w, false)[1]);
            // today's float32 path: the same values to float32 rounding
            close("rmsNorm against ND4J's float32", ND4J.rmsNorm(x, w, 1e-5)[0], got[0], 4 * ULPS);
        }
    }

    @Test
    void siluMulForwardAndBackward() {
        for (int n : WIDTHS) {
            INDArray a = rows(5, n, 3).muli(3);
            INDArray b = rows(5, n, 4);
            INDArray dy = rows(5, n, 5);
            close("siluMul n=" + n, ND4J.siluMul(f64(a), f64(b)), VEC.siluMul(a, b), ULPS);
            INDArray[] want = ND4J.siluMulBackward(f64(dy), f64(a), f64(b));
            INDArray[] got = VEC.siluMulBackward(dy, a, b);
            close("siluMul da n=" + n, want[0], got[0], ULPS);
            close("siluMul db n=" + n, want[1], got[1], ULPS);
        }
    }

    @Test
    void rotaryEqualsNd4jsBitForBitInBothDirections() {
        int heads = 4;
        for (int d : new int[] {8, 64, 96}) {
            INDArray x = rows(6, heads * d, 6);
            INDArray cos = rows(6, heads * d, 7);
            INDArray sin = rows(6, heads * d, 8);
            for (boolean inverse : new boolean[] {false, true}) {
                INDArray want = ND4J.rotary(x, cos.dup(), sin.dup(), heads, RotaryPairs.HALVES, inverse);
                assertEquals(want, VEC.rotary(x, cos.dup(), sin.dup(), heads, RotaryPairs.HALVES, inverse),
                        "d=" + d + " inverse=" + inverse);
            }
            // interleaved pairs go to the wrapped kernels
            assertEquals(ND4J.rotary(x, cos.dup(), sin.dup(), heads, RotaryPairs.INTERLEAVED, false),
                    VEC.rotary(x, cos.dup(), sin.dup(), heads, RotaryPairs.INTERLEAVED, false));
        }
    }

    @Test
    void softmaxForwardAndBackward() {
        for (int n : WIDTHS) {
            INDArray x = rows(9, n, 9).muli(4);
            INDArray p64 = ND4J.softmax(f64(x));
            INDArray p = VEC.softmax(x);
            close("softmax n=" + n, p64, p, ULPS);
            INDArray dp = rows(9, n, 10);
            close("softmax backward n=" + n, ND4J.softmaxBackward(p64, f64(dp)), VEC.softmaxBackward(p, dp), 4 * ULPS);
        }
        // rank 4, as attention's scores
        Nd4j.getRandom().setSeed(11);
        INDArray s = Nd4j.randn(DataType.FLOAT, 2, 3, 17, 17);
        close("softmax rank 4", ND4J.softmax(f64(s)), VEC.softmax(s), ULPS);
    }

    /** The visible keys' softmax and exact zeros elsewhere, as adding the mask and taking the softmax gives. */
    @Test
    void causalSoftmaxInPlaceEqualsTheMaskedSoftmax() {
        int[][] cases = {{17, 17, 0}, {5, 17, 0}, {1, 17, 0}, {17, 17, 4}, {6, 40, 3}};
        for (int[] c : cases) {
            int t = c[0];
            int tk = c[1];
            int window = c[2];
            Nd4j.getRandom().setSeed(t * 100 + tk + window);
            INDArray s = Nd4j.randn(DataType.FLOAT, 2, 3, t, tk).muli(3);
            INDArray want = f64(s);
            CausalMask.addTo(want, t, window);
            want = ND4J.softmax(want);
            INDArray got = s.dup();
            INDArray same = VEC.causalSoftmaxInPlace(got, t, window);
            assertTrue(same == got, "in place");
            close("causal softmax t=" + t + " tk=" + tk + " window=" + window, want, got, ULPS);
            for (int i = 0; i < t; i++) {
                for (int j = 0; j < tk; j++) {
                    if (CausalMask.hidden(i, j, tk - t, window)) {
                        assertEquals(0f, got.getFloat(1, 2, i, j), "hidden key " + j + " of query " + i);
                    }
                }
            }
            // ND4J's path, in place as well
            INDArray nd = s.dup();
            close("ND4J's causal softmax t=" + t, want, ND4J.causalSoftmaxInPlace(nd, t, window), ULPS);
        }
    }

    @Test
    void crossEntropyLossAndGradient() {
        int v = 1000;
        INDArray logits = rows(6, v, 12).muli(5);
        INDArray targets = Nd4j.createFromArray(3L, 999L, -100L, 0L, 512L, 77L);
        for (double scale : new double[] {1.0, 0.25}) {
            INDArray[] want = ND4J.crossEntropy(f64(logits), targets, -100, true, scale);
            INDArray[] got = VEC.crossEntropy(logits.dup(), targets, -100, true, scale);
            Agreement.within("cross-entropy loss", Math.abs(got[0].getDouble(0) - want[0].getDouble(0))
                    / want[0].getDouble(0), 4 * ULPS);
            close("cross-entropy gradient", want[1], got[1], 4 * ULPS);
            for (int j = 0; j < v; j++) {
                assertEquals(0f, got[1].getFloat(2, j), "ignored row's gradient");
            }
        }
        INDArray[] lossOnly = VEC.crossEntropy(logits, targets, -100, false, 1);
        assertNull(lossOnly[1]);
        assertEquals(ND4J.crossEntropy(f64(logits), targets, -100, false, 1)[0].getDouble(0),
                lossOnly[0].getDouble(0), 1e-5);
        assertTrue(Double.isNaN(VEC.crossEntropy(logits, Nd4j.createFromArray(-100L, -100L, -100L, -100L, -100L,
                -100L), -100, false, 1)[0].getDouble(0)), "no counted row: NaN, as PyTorch");
        assertThrows(IllegalArgumentException.class, () -> VEC.crossEntropy(logits, Nd4j.createFromArray(1L, 2L, 3L,
                4L, 5L, (long) v), -100, false, 1));
    }

    @Test
    void adamWInOnePassFollowsPyTorchsRuleOverSteps() {
        int n = 1000 + 7;
        INDArray p = rows(1, n, 13);
        INDArray m = Nd4j.zeros(DataType.FLOAT, 1, n);
        INDArray v = Nd4j.zeros(DataType.FLOAT, 1, n);
        INDArray p64 = f64(p);
        INDArray m64 = f64(m);
        INDArray v64 = f64(v);
        INDArray pNd = p.dup();
        INDArray mNd = m.dup();
        INDArray vNd = v.dup();
        for (int step = 1; step <= 3; step++) {
            INDArray g = rows(1, n, 20 + step);
            Kernels.AdamWStep s = new Kernels.AdamWStep(1e-2, 0.9, 0.999, 1e-8, 0.1, step);
            VEC.adamW(p, g.dup(), m, v, s);
            ND4J.adamW(p64, f64(g), m64, v64, s);
            ND4J.adamW(pNd, g.dup(), mNd, vNd, s);
        }
        // the parameter moved by ~lr per step: its change is what must be right
        close("AdamW parameter change", p64.sub(f64(rows(1, n, 13))), f64(p).sub(f64(rows(1, n, 13))).castTo(
                DataType.FLOAT), 64 * ULPS);
        close("AdamW exp_avg", m64, m, ULPS);
        close("AdamW exp_avg_sq", v64, v, ULPS);
        close("AdamW against libnd4j's float32 updater", f64(pNd), p, ULPS);
    }

    @Test
    void lionInOnePass() {
        int n = 500 + 3;
        INDArray p = rows(1, n, 30);
        INDArray m = rows(1, n, 31).muli(0.1);
        INDArray g = rows(1, n, 32);
        INDArray pNd = p.dup();
        INDArray mNd = m.dup();
        VEC.lion(p, g, m, 1e-3, 0.9, 0.99, 0.1);
        ND4J.lion(pNd, g, mNd, 1e-3, 0.9, 0.99, 0.1);
        close("Lion parameter", pNd, p, ULPS);
        close("Lion exp_avg", mNd, m, ULPS);
    }

    @Test
    void adanInOnePassOverSteps() {
        for (boolean noProx : new boolean[] {false, true}) {
            int n = 700 + 5;
            INDArray[] vec = {rows(1, n, 70), Nd4j.zeros(DataType.FLOAT, 1, n), Nd4j.zeros(DataType.FLOAT, 1, n),
                Nd4j.zeros(DataType.FLOAT, 1, n), Nd4j.zeros(DataType.FLOAT, 1, n)};
            INDArray[] f64 = new INDArray[5];
            for (int k = 0; k < 5; k++) {
                f64[k] = f64(vec[k]);
            }
            INDArray start = f64(vec[0]);
            for (int step = 1; step <= 3; step++) {
                INDArray g = rows(1, n, 80 + step);
                Kernels.AdanStep s = new Kernels.AdanStep(1e-2, 0.02, 0.08, 0.01, 1e-8, 0.02, noProx, step);
                VEC.adan(vec[0], g.dup(), vec[1], vec[2], vec[3], vec[4], s);
                ND4J.adan(f64[0], f64(g), f64[1], f64[2], f64[3], f64[4], s);
            }
            close("Adan parameter change, noProx " + noProx, f64[0].sub(start), f64(vec[0]).sub(start)
                    .castTo(DataType.FLOAT), 64 * ULPS);
            for (int k = 1; k < 5; k++) {
                close("Adan state " + k + ", noProx " + noProx, f64[k], vec[k], 4 * ULPS);
            }
        }
    }

    @Test
    void sophiaGInOnePass() {
        int n = 600 + 9;
        INDArray p = rows(1, n, 90);
        INDArray m = rows(1, n, 91).muli(0.1);
        INDArray h = Nd4j.rand(DataType.FLOAT, 1, n).muli(0.01);
        INDArray g = rows(1, n, 92);
        INDArray p64 = f64(p);
        INDArray m64 = f64(m);
        VEC.sophiaG(p, g.dup(), m, h, 1e-3, 0.965, 0.04 * 480, 0.1);
        ND4J.sophiaG(p64, f64(g), m64, f64(h), 1e-3, 0.965, 0.04 * 480, 0.1);
        close("SophiaG parameter", p64, p, ULPS);
        close("SophiaG exp_avg", m64, m, ULPS);
    }

    @Test
    void scaleSubtractRoundsAsNd4jBitForBit() {
        INDArray x = rows(3, 83, 40);
        INDArray y = rows(3, 83, 41);
        INDArray want = x.dup();
        ND4J.scaleSubtract(want, 0.99990004, y);
        VEC.scaleSubtract(x, 0.99990004, y);
        assertEquals(want, x);
    }

    /** float64 arrays and views with gaps are not computed here: the wrapped kernels' results, bit for bit. */
    @Test
    void otherArraysGoToTheWrappedKernels() {
        Nd4j.getRandom().setSeed(50);
        INDArray x = Nd4j.randn(DataType.DOUBLE, 4, 40);
        INDArray w = Nd4j.rand(DataType.DOUBLE, 40);
        assertEquals(ND4J.rmsNorm(x, w, 1e-6)[0], VEC.rmsNorm(x, w, 1e-6)[0]);
        assertEquals(ND4J.softmax(x), VEC.softmax(x));
        INDArray wide = Nd4j.randn(DataType.FLOAT, 4, 80);
        INDArray gappy = wide.get(all(), interval(0, 40));
        INDArray other = Nd4j.randn(DataType.FLOAT, 4, 40);
        assertEquals(ND4J.siluMul(gappy, other), VEC.siluMul(gappy, other));
    }
}
