package dev.collie.core.tensor;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/** bfloat16 copies: rounding to nearest, ties to even, and layouts kept. */
class Bf16Test {
    private static float roundTrip(float v) {
        return Bf16.widen(Bf16.narrow(Nd4j.createFromArray(v, 0f))).getFloat(0);
    }

    private static int bits(float v) {
        return Float.floatToRawIntBits(v);
    }

    @Test
    void roundsToNearestTiesToEven() {
        // 1 + 2^-8 lies halfway between 1 (even last bit) and 1 + 2^-7: to 1
        assertEquals(0x3F800000, bits(roundTrip(Float.intBitsToFloat(0x3F808000))));
        // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up
        assertEquals(0x3F820000, bits(roundTrip(Float.intBitsToFloat(0x3F818000))));
        // just above and just below a halfway point: nearest (truncation would give 0x3F80 for both)
        assertEquals(0x3F810000, bits(roundTrip(Float.intBitsToFloat(0x3F808001))));
        assertEquals(0x3F800000, bits(roundTrip(Float.intBitsToFloat(0x3F807FFF))));
        // negative values round their magnitude the same way
        assertEquals(0xBF810000, bits(roundTrip(Float.intBitsToFloat(0xBF80C000))));
        // pi = 0x40490FDB: the dropped 0x0FDB is below half of 0x10000, so 0x4049 (3.140625)
        assertEquals(3.140625f, roundTrip((float) Math.PI));
        assertTrue(Float.isNaN(roundTrip(Float.NaN)));
        assertEquals(Float.NEGATIVE_INFINITY, roundTrip(Float.NEGATIVE_INFINITY));
    }

    @Test
    void matchesNearestEvenOfAFloat64ReferenceOnRandomValues() {
        Random r = new Random(7);
        float[] v = new float[4096];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * Math.pow(2, r.nextInt(40) - 20));
        }
        INDArray back = Bf16.widen(Bf16.narrow(Nd4j.createFromArray(v)));
        for (int i = 0; i < v.length; i++) {
            double x = v[i];
            // the two bf16 neighbours of x (8 significant bits), and the nearest of them, ties to the even one
            int e = Math.getExponent(x);
            double ulp = Math.scalb(1.0, e - 7);
            double lo = Math.floor(x / ulp) * ulp;
            double hi = lo + ulp;
            double want = x - lo < hi - x ? lo : hi - x < x - lo ? hi
                    : ((long) Math.floor(x / ulp) % 2 == 0 ? lo : hi);
            assertEquals(want, back.getFloat(i), 0.0, "element " + i + ": " + v[i]);
            assertTrue(Math.abs(back.getFloat(i) - x) <= Math.scalb(Math.abs(x), -8), "relative error above 2^-8");
        }
    }

    @Test
    void aPermutedViewKeepsItsShapeStridesAndOrder() {
        // the heads view attention saves: rows [b·t, h·d] (here a view at an offset) seen as [b, h, t, d]
        INDArray buffer = Nd4j.rand(DataType.FLOAT, 2 * 3 * 4 * 5 + 20);
        INDArray rows = buffer.get(interval(20, 140)).reshape('c', 6, 20);
        INDArray heads = rows.reshape('c', 2, 3, 4, 5).permute(0, 2, 1, 3);
        INDArray narrow = Bf16.narrow(heads);
        INDArray wide = Bf16.widen(narrow);
        assertEquals(DataType.BFLOAT16, narrow.dataType());
        assertEquals(DataType.FLOAT, wide.dataType());
        assertArrayEquals(heads.shape(), wide.shape());
        assertArrayEquals(heads.stride(), wide.stride());
        assertEquals(heads.ordering(), wide.ordering());
        assertEquals(0.0, wide.sub(heads).amaxNumber().doubleValue(), Math.scalb(1.0, -8));
        assertEquals(wide, Bf16.widen(Bf16.narrow(wide)));          // a bf16 value survives the round trip exactly
    }

    @Test
    void aViewWithGapsIsCopiedByValue() {
        INDArray x = Nd4j.rand(DataType.FLOAT, 8, 6);
        INDArray cols = x.get(all(), interval(1, 4));                // every row has a gap
        INDArray wide = Bf16.widen(Bf16.narrow(cols));
        assertArrayEquals(cols.shape(), wide.shape());
        assertEquals(0.0, wide.sub(cols).amaxNumber().doubleValue(), Math.scalb(1.0, -8));
        assertEquals(cols, Bf16.copy(cols, DataType.FLOAT));          // same type: an exact copy
    }
}
