package dev.collie.core.tensor;

import dev.collie.core.testing.NumericalParity;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/** bf16 matmuls through oneDNN 3.3 against ND4J's fp32 products, for every transpose and for views. */
@NumericalParity
class DnnlTest {
    /** With oneDNN 3.3 switched off ({@code COLLIE_ONEDNN3=off}) only the check of the switch itself runs. */
    @BeforeEach
    void onednn3(TestInfo test) {
        assumeTrue(Backends.dnnlAvailable()
                || test.getTestMethod().orElseThrow().getName().equals("reportsItsEngineAndRefusesBadInput"),
                "oneDNN 3.3 switched off");
    }

    @AfterEach
    void fp32Again() {
        Backends.setMatmulPrecision(MatmulPrecision.FP32);
    }

    /** max |bf16 − fp32| / max |fp32|: bf16 inputs (8-bit mantissa) give ~1e-3 here, fp32 ~1e-7. */
    private static double error(INDArray a, INDArray b, boolean ta, boolean tb) {
        Backends.setMatmulPrecision(MatmulPrecision.FP32);
        INDArray want = Kernels.get().matmul(a.dup('c'), b.dup('c'), ta, tb); // ND4J's Mmul wants plain arrays
        Backends.setMatmulPrecision(MatmulPrecision.BF16);
        INDArray got = Kernels.get().matmul(a, b, ta, tb);
        assertEquals(DataType.FLOAT, got.dataType());
        return got.sub(want).amaxNumber().doubleValue() / want.amaxNumber().doubleValue();
    }

    @Test
    void everyTransposeMatchesFp32WithinBf16Rounding() {
        Nd4j.getRandom().setSeed(3);
        INDArray x = Nd4j.randn(DataType.FLOAT, 37, 53);
        INDArray w = Nd4j.randn(DataType.FLOAT, 29, 53);
        INDArray xt = Nd4j.randn(DataType.FLOAT, 53, 37);
        INDArray wt = Nd4j.randn(DataType.FLOAT, 53, 29);
        double[] errors = {error(x, w, false, true), error(x, wt, false, false), error(xt, wt, true, false),
            error(xt, w, true, true)};
        for (double e : errors) {
            assertTrue(e < 1e-2, "bf16 product off by " + e + " of its largest entry");
        }
    }

    @Test
    void viewsWithOffsetsAndStridesAreRead() {
        Nd4j.getRandom().setSeed(4);
        INDArray big = Nd4j.randn(DataType.FLOAT, 64, 80);
        INDArray a = big.get(interval(5, 45), interval(7, 39));   // offset view, row stride 80
        INDArray b = big.get(all(), interval(20, 52)).transpose(); // transposed view: [32, 64]
        assertTrue(error(a, b, false, false) < 1e-2);
        assertTrue(error(b, a, true, true) < 1e-2);
    }

    @Test
    void batchedProductsMatchNd4jInBothPrecisions() {
        Nd4j.getRandom().setSeed(5);
        INDArray q = Nd4j.randn(DataType.FLOAT, 2, 3, 20, 8);
        INDArray k = Nd4j.randn(DataType.FLOAT, 2, 3, 12, 8);
        INDArray p = Nd4j.randn(DataType.FLOAT, 2, 3, 20, 12);
        // fp32: oneDNN's batched product against ND4J's, to fp32 rounding
        for (INDArray[] c : new INDArray[][] {{q, k}, {p, k}}) {
            boolean tb = c[1] == k && c[0] == q;
            INDArray nd4j = Nd4j.createUninitialized(DataType.FLOAT, 2, 3, 20, tb ? 12 : 8);
            Nd4j.exec(new Mmul(c[0], c[1], nd4j,
                    MMulTranspose.builder().transposeB(tb).build()));
            INDArray got = Kernels.get().matmul(c[0], c[1], false, tb);
            assertTrue(got.sub(nd4j).amaxNumber().doubleValue() < 1e-5, "batched fp32 product differs");
        }
        assertTrue(error(p, q, true, false) < 1e-2, "pᵀ·q in bf16"); // as attention's dV = pᵀ·dO
        assertTrue(error(q, k, false, true) < 1e-2, "q·kᵀ in bf16");
    }

    @Test
    void rowWiseKernelsMatchNd4j() {
        Nd4j.getRandom().setSeed(6);
        INDArray x = Nd4j.randn(DataType.FLOAT, 2, 3, 5, 33).muli(4);
        INDArray p = Kernels.get().softmax(x);
        INDArray want = Nd4j.exec(new SoftMax(x, x.ulike(), 3))[0];
        assertTrue(p.sub(want).amaxNumber().doubleValue() < 1e-6, "softmax");
        INDArray dp = Nd4j.randn(DataType.FLOAT, 2, 3, 5, 33);
        INDArray dx = Kernels.get().softmaxBackward(p, dp);
        INDArray ref = dp.sub(p.mul(dp).sum(true, 3)).muli(p);
        assertTrue(dx.sub(ref).amaxNumber().doubleValue() < 1e-6, "softmax backward");
        INDArray lsm = x.ulike();
        Dnnl.logSoftmax(x, lsm);
        assertTrue(lsm.sub(Transforms.log(want, true)).amaxNumber().doubleValue() < 1e-5);
        INDArray e = x.ulike();
        Dnnl.exp(x, e);
        INDArray wantExp = Transforms.exp(x, true);
        assertTrue(e.sub(wantExp).div(e).amaxNumber().doubleValue() < 1e-6);
    }

    @Test
    void siluMulAndItsBackwardMatchFloat64() {
        Nd4j.getRandom().setSeed(8);
        INDArray a = Nd4j.randn(DataType.DOUBLE, 7, 40).muli(3);
        INDArray b = Nd4j.randn(DataType.DOUBLE, 7, 40);
        INDArray dy = Nd4j.randn(DataType.DOUBLE, 7, 40);
        INDArray want = Kernels.get().siluMul(a, b);           // float64: libnd4j's ops
        INDArray[] wantGrad = Kernels.get().siluMulBackward(dy, a, b);
        INDArray got = Kernels.get().siluMul(a.castTo(DataType.FLOAT), b.castTo(DataType.FLOAT));
        INDArray[] gotGrad = Kernels.get().siluMulBackward(dy.castTo(DataType.FLOAT), a.castTo(DataType.FLOAT),
                b.castTo(DataType.FLOAT));
        assertTrue(got.castTo(DataType.DOUBLE).sub(want).amaxNumber().doubleValue() < 1e-5, "silu·b");
        for (int i = 0; i < 2; i++) {
            double d = gotGrad[i].castTo(DataType.DOUBLE).sub(wantGrad[i]).amaxNumber().doubleValue();
            assertTrue(d < 1e-5, (i == 0 ? "da" : "db") + " off by " + d);
        }
    }

    /** The log-softmax cross-entropy equals the float64 one, also where p[target] underflows in fp32. */
    @Test
    void crossEntropyOnOneDnnlIsExact() {
        Nd4j.getRandom().setSeed(7);
        INDArray logits = Nd4j.randn(DataType.DOUBLE, 6, 50).muli(3);
        logits.putScalar(0, 7, 130.0); // row 0's target (3) sits 130 below its max: p underflows in fp32
        INDArray targets = Nd4j.createFromArray(3L, 9L, -100L, 0L, 49L, 11L);
        INDArray[] want = Kernels.get().crossEntropy(logits.dup(), targets, -100, true, 1.0);
        INDArray[] got = Kernels.get().crossEntropy(logits.castTo(DataType.FLOAT), targets, -100, true, 1.0);
        assertEquals(want[0].getDouble(0), got[0].getDouble(0), 1e-5 * Math.abs(want[0].getDouble(0)));
        double g = got[1].castTo(DataType.DOUBLE).sub(want[1]).amaxNumber().doubleValue();
        assertTrue(g < 5e-7, "gradient off by " + g); // entries up to 0.2: a few fp32 ulps
        assertEquals(0.0, got[1].getRow(2).amaxNumber().doubleValue(), "an ignored row has no gradient");
        // a gradient scale is folded into the same passes, on both paths
        INDArray[] scaled = Kernels.get().crossEntropy(logits.castTo(DataType.FLOAT), targets, -100, true, 0.25);
        INDArray[] scaled64 = Kernels.get().crossEntropy(logits.dup(), targets, -100, true, 0.25);
        assertEquals(got[0].getDouble(0), scaled[0].getDouble(0), 0);
        assertTrue(scaled[1].castTo(DataType.DOUBLE).sub(want[1].mul(0.25)).amaxNumber().doubleValue() < 2e-7);
        assertTrue(scaled64[1].sub(want[1].mul(0.25)).amaxNumber().doubleValue() < 1e-15);
    }

    /** Padded batches of many lengths compile many shapes: the cache keeps the newest, the rest are freed. */
    @Test
    void primitiveCacheIsBounded() {
        INDArray w = Nd4j.randn(DataType.FLOAT, 8, 16);
        for (int rows = 1; rows <= Dnnl.CACHE_SIZE + 40; rows++) {
            INDArray x = Nd4j.randn(DataType.FLOAT, rows, 8);
            assertEquals(rows, Kernels.get().softmax(x).rows());
            Backends.setMatmulPrecision(MatmulPrecision.BF16);
            assertEquals(16, Kernels.get().matmul(x, w, false, false).columns());
            Backends.setMatmulPrecision(MatmulPrecision.FP32);
        }
        assertEquals(Dnnl.CACHE_SIZE, Dnnl.cachedPrimitives());
        INDArray x = Nd4j.randn(DataType.FLOAT, 3, 8); // an evicted shape compiles again and still computes
        Backends.setMatmulPrecision(MatmulPrecision.BF16);
        assertTrue(error(x, w, false, false) < 1e-2);
    }

    @Test
    void workerThreadsMultiplySideBySide() throws Exception {
        Backends.setMatmulPrecision(MatmulPrecision.BF16);
        INDArray a = Nd4j.randn(DataType.FLOAT, 128, 96);
        INDArray b = Nd4j.randn(DataType.FLOAT, 64, 96);
        INDArray first = Kernels.get().matmul(a, b, false, true);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<?>[] f = new Future<?>[4];
            for (int i = 0; i < f.length; i++) {
                f[i] = pool.submit(() -> {
                    for (int k = 0; k < 20; k++) {
                        assertEquals(first, Kernels.get().matmul(a, b, false, true));
                    }
                    return null;
                });
            }
            for (Future<?> x : f) {
                x.get();
            }
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void emptyProductsAreZeros() {
        Backends.setMatmulPrecision(MatmulPrecision.BF16);
        INDArray none = Kernels.get().matmul(Nd4j.create(DataType.FLOAT, 3, 0), Nd4j.create(DataType.FLOAT, 0, 4),
                false, false);
        assertEquals(0.0, none.amaxNumber().doubleValue());
        assertEquals(12, none.length());
        assertEquals(0, Kernels.get().matmul(Nd4j.create(DataType.FLOAT, 0, 5), Nd4j.create(DataType.FLOAT, 5, 4),
                false, false).length());
    }

    @Test
    void reportsItsEngineAndRefusesBadInput() {
        if (Backends.dnnlAvailable()) {
            assertNotNull(Backends.bf16MatmulEngine());
        } else {
            // switched off (COLLIE_ONEDNN3=off): no engine, and bf16 is refused naming the switch
            assertEquals(null, Backends.bf16MatmulEngine());
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> Backends.setMatmulPrecision(MatmulPrecision.BF16));
            assertTrue(e.getMessage().contains("switched off by"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> MatmulPrecision.parse("fp16"));
        assertEquals(MatmulPrecision.BF16, MatmulPrecision.parse(" BF16 "));
    }

    @Test
    void rotaryMatchesTheFloat64PathAndIsUndoneByItsInverse() {
        Nd4j.getRandom().setSeed(5);
        int n = 12;
        int heads = 3;
        int half = 4;
        int width = heads * 2 * half;
        INDArray wide = Nd4j.randn(DataType.FLOAT, n, width + 5);
        INDArray x = wide.get(all(), interval(2, 2 + width));   // a view: copied to rows first
        INDArray angles = Nd4j.rand(DataType.FLOAT, n, half).muli(6.0);
        INDArray c = Transforms.cos(angles, true);
        INDArray s = Transforms.sin(angles, true);
        INDArray cos = Nd4j.concat(1, c, c, c, c, c, c);          // both halves of every head
        INDArray sin = Nd4j.concat(1, s, s, s, s, s, s);
        for (boolean inverse : new boolean[] {false, true}) {
            INDArray got = Kernels.get().rotary(x, cos, sin, heads, RotaryPairs.HALVES, inverse);   // oneDNN, fp32
            INDArray want = Kernels.get().rotary(x.castTo(DataType.DOUBLE), cos.castTo(DataType.DOUBLE),
                    sin.castTo(DataType.DOUBLE), heads, RotaryPairs.HALVES, inverse);              // ND4J ops, float64
            assertEquals(DataType.FLOAT, got.dataType());
            assertTrue(got.castTo(DataType.DOUBLE).sub(want).amaxNumber().doubleValue() < 1e-6, "inverse " + inverse);
        }
        // by hand, head 1, row 7, frequency 2: [x1·c − x2·s, x2·c + x1·s]
        Backends.setMatmulPrecision(MatmulPrecision.BF16);      // the swap stays an exact fp32 product
        INDArray y = Kernels.get().rotary(x, cos, sin, heads, RotaryPairs.HALVES, false);
        double x1 = x.getDouble(7, 8 + 2);
        double x2 = x.getDouble(7, 8 + half + 2);
        double cv = c.getDouble(7, 2);
        double sv = s.getDouble(7, 2);
        assertEquals(x1 * cv - x2 * sv, y.getDouble(7, 8 + 2), 1e-6);
        assertEquals(x2 * cv + x1 * sv, y.getDouble(7, 8 + half + 2), 1e-6);
        // the inverse undoes the rotation
        INDArray back = Kernels.get().rotary(y, cos, sin, heads, RotaryPairs.HALVES, true);
        assertTrue(back.sub(x).amaxNumber().doubleValue() < 1e-5);
    }

    /** Interleaved pairs (2i, 2i+1), as ChatGLM and GPT-J rotate: oneDNN's swap product against ND4J's views and by hand. */
    @Test
    void interleavedRotaryMatchesTheFloat64PathAndTheDefinition() {
        Nd4j.getRandom().setSeed(6);
        int n = 5;
        int heads = 2;
        int d = 8;
        INDArray x = Nd4j.randn(DataType.FLOAT, n, heads * d);
        INDArray cos = Nd4j.rand(DataType.FLOAT, n, heads * d);
        INDArray sin = Nd4j.rand(DataType.FLOAT, n, heads * d);
        for (boolean inverse : new boolean[] {false, true}) {
            INDArray got = Kernels.get().rotary(x, cos, sin, heads, RotaryPairs.INTERLEAVED, inverse);
            INDArray want = Kernels.get().rotary(x.castTo(DataType.DOUBLE), cos.castTo(DataType.DOUBLE),
                    sin.castTo(DataType.DOUBLE), heads, RotaryPairs.INTERLEAVED, inverse);
            assertTrue(got.castTo(DataType.DOUBLE).sub(want).amaxNumber().doubleValue() < 1e-6, "inverse " + inverse);
            double sign = inverse ? -1 : 1;
            // head 1, row 3, pair 2: dimensions 4 and 5 of the head
            int a = d + 4;
            int b = d + 5;
            assertEquals(x.getDouble(3, a) * cos.getDouble(3, a) - sign * x.getDouble(3, b) * sin.getDouble(3, a),
                    got.getDouble(3, a), 1e-6);
            assertEquals(x.getDouble(3, b) * cos.getDouble(3, b) + sign * x.getDouble(3, a) * sin.getDouble(3, b),
                    got.getDouble(3, b), 1e-6);
        }
    }

    @Test
    void scaleSubtractRoundsAsMultiplyThenSubtract() {
        Nd4j.getRandom().setSeed(9);
        INDArray x = Nd4j.randn(DataType.FLOAT, 37, 129);
        INDArray y = Nd4j.randn(DataType.FLOAT, 37, 129).muli(1e-3);
        INDArray want = x.mul(0.99990004).subi(y);
        INDArray got = x.dup();
        Kernels.get().scaleSubtract(got, 0.99990004, y);
        assertEquals(0.0, got.sub(want).amaxNumber().doubleValue(), "one compiled primitive, two roundings as ND4J's");
        Kernels.get().scaleSubtract(got, 0.5, y);    // another scale: the same primitive, a new run-time argument
        assertEquals(0.0, got.sub(want.muli(0.5).subi(y)).amaxNumber().doubleValue());
    }
}
