package dev.collie.core.tensor;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Java path for small arrays against ND4J's kernels: the same values, to each type's rounding. */
class SmallArrayKernelsTest {
    private static final Kernels ND4J = Nd4jKernels.INSTANCE;
    private static final Kernels SMALL = new SmallArrayKernels(Nd4jKernels.INSTANCE);

    private static void assertClose(INDArray want, INDArray got, double bound) {
        assertArrayEquals(want.shape(), got.shape());
        assertEquals(want.dataType(), got.dataType());
        double scale = Math.max(1, want.castTo(DataType.DOUBLE).amaxNumber().doubleValue());
        double diff = want.castTo(DataType.DOUBLE).sub(got.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
        assertTrue(diff <= bound * scale, "differ by " + diff + " (scale " + scale + ")");
    }

    @Test
    void rmsNormSiluMulAndRotaryEqualNd4jsInBothTypes() {
        Nd4j.getRandom().setSeed(3);
        for (DataType t : new DataType[] {DataType.DOUBLE, DataType.FLOAT}) {
            double bound = t == DataType.DOUBLE ? 1e-14 : 1e-6;
            INDArray x = Nd4j.randn(t, 3, 48);
            INDArray w = Nd4j.rand(t, 48).addi(0.5);
            INDArray[] want = ND4J.rmsNorm(x, w, 1e-5);
            INDArray[] got = SMALL.rmsNorm(x, w, 1e-5);
            for (int i = 0; i < 3; i++) {
                assertClose(want[i], got[i], bound);
            }
            INDArray g = Nd4j.randn(t, 3, 48);
            assertClose(ND4J.siluMul(x, g), SMALL.siluMul(x, g), bound);
            INDArray cos = Nd4j.rand(t, 3, 48);
            INDArray sin = Nd4j.rand(t, 3, 48);
            for (RotaryPairs pairs : RotaryPairs.values()) {
                for (boolean inverse : new boolean[] {false, true}) {
                    assertClose(ND4J.rotary(x, cos, sin, 4, pairs, inverse), SMALL.rotary(x, cos, sin, 4, pairs,
                            inverse), bound);
                }
            }
        }
    }

    /** Large arrays and views with gaps go to the wrapped kernels: bit for bit ND4J's result. */
    @Test
    void largeArraysAndViewsGoToTheWrappedKernels() {
        INDArray big = Nd4j.randn(DataType.FLOAT, SmallArrayKernels.MAX_ELEMENTS / 64 + 1, 64);
        INDArray w = Nd4j.rand(DataType.FLOAT, 64);
        assertEquals(ND4J.rmsNorm(big, w, 1e-5)[0], SMALL.rmsNorm(big, w, 1e-5)[0]);
        INDArray wide = Nd4j.randn(DataType.FLOAT, 4, 128);
        INDArray view = wide.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
                org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 64));
        INDArray other = Nd4j.randn(DataType.FLOAT, 4, 64);
        assertEquals(ND4J.siluMul(view, other), SMALL.siluMul(view, other));
    }
}
