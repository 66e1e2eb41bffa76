package dev.collie.core.train;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MemoryTest {

    @Test
    void limitRefusesASizeAboveItNamingBoth() {
        Memory.Limit l = new Memory.Limit(15_600_000_000L, "this machine has 15.6 GB");
        String m = assertThrows(CollieException.class,
                () -> l.require(17_200_000_000L, "the model needs %s of parameters")).getMessage();
        assertEquals("the model needs 17.2 GB of parameters; this machine has 15.6 GB", m);
        assertDoesNotThrow(() -> l.require(15_600_000_000L, "%s"));
    }

    @Test
    void theLimitOfThisProcessIsPositiveAndAtMostThePhysicalMemory() {
        Memory.Limit l = Memory.limit();
        long physical = ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                .getOperatingSystemMXBean()).getTotalMemorySize();
        assertTrue(l.bytes() > 0 && l.bytes() <= physical, l.toString());
    }

    @Test
    void offHeapBytesCountAnArrayWhileItLives() {
        long before = Memory.offHeapBytes();
        INDArray a = Nd4j.zeros(DataType.FLOAT, 1 << 20);
        long during = Memory.offHeapBytes();
        a.close();
        assertTrue(during - before >= 4L << 20, before + " -> " + during);
        assertTrue(Memory.offHeapBytes() <= during - (4L << 20), "released: " + Memory.offHeapBytes());
    }

    @Test
    void sizesReadForPeopleAndEstimatesSaturate() {
        assertEquals("950 B", Memory.format(950));
        assertEquals("97.6 MB", Memory.format(97_600_000));
        assertEquals("1.0 GB", Memory.format(999_960_000));
        assertEquals("1.9 TB", Memory.format(1_920_000_000_000L));
        assertEquals(Long.MAX_VALUE, Memory.times(1L << 40, 1L << 30));
        assertEquals(6, Memory.times(2, 3));
        assertEquals(Long.MAX_VALUE, Memory.plus(Long.MAX_VALUE - 1, 2));
    }
}
