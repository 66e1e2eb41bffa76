package dev.collie.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertEquals;

class KvCacheTest {
    /** Appends within the capacity and past it hold exactly the concatenation of what was appended. */
    @Test
    void appendsEqualTheConcatenationWithinAndBeyondTheCapacity() {
        Object owner = new Object();
        KvCache cache = new KvCache(5);
        INDArray keys = null;
        INDArray values = null;
        for (int len : new int[] {3, 1, 1, 4, 1}) {
            INDArray k = Nd4j.rand(DataType.DOUBLE, 2, 3, len, 4);
            INDArray v = Nd4j.rand(DataType.DOUBLE, 2, 3, len, 4);
            keys = keys == null ? k : Nd4j.concat(2, keys, k);
            values = values == null ? v : Nd4j.concat(2, values, v);
            INDArray[] full = cache.append(owner, k, v);
            assertEquals(keys, full[0].dup('c'));
            assertEquals(values, full[1].dup('c'));
        }
        // 5 positions fill the first buffers; the 9th doubles them to 10, which the 10th fills
        assertEquals(2L * 2 * 3 * 10 * 4 * 8, cache.bytes());
    }
}
