package dev.collie.core.data;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.List;

import static dev.collie.core.data.Sample.IGNORE_INDEX;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CollatorTest {
    private static final int PAD = 9;
    private static final Sample LONG = new Sample(new int[] {1, 2, 3}, new int[] {IGNORE_INDEX, 2, 3});
    private static final Sample SHORT = Sample.causal(new int[] {4});

    @Test
    void rightPaddingPadsIdsLabelsAndMaskAfterTheTokens() {
        Batch b = new Collator(PAD, false).collate(List.of(LONG, SHORT));
        assertEquals(2, b.rows());
        assertEquals(3, b.seqLen());
        assertArrayEquals(new long[][] {{1, 2, 3}, {4, PAD, PAD}}, b.inputIds().toLongMatrix());
        assertArrayEquals(new long[][] {{IGNORE_INDEX, 2, 3}, {4, IGNORE_INDEX, IGNORE_INDEX}},
                b.labels().toLongMatrix());
        assertArrayEquals(new long[][] {{1, 1, 1}, {1, 0, 0}}, b.attentionMask().toLongMatrix());
    }

    @Test
    void leftPaddingPutsThePaddingFirst() {
        Batch b = new Collator(PAD, true).collate(List.of(SHORT, LONG));
        assertArrayEquals(new long[][] {{PAD, PAD, 4}, {1, 2, 3}}, b.inputIds().toLongMatrix());
        assertArrayEquals(new long[][] {{IGNORE_INDEX, IGNORE_INDEX, 4}, {IGNORE_INDEX, 2, 3}},
                b.labels().toLongMatrix());
        assertArrayEquals(new long[][] {{0, 0, 1}, {1, 1, 1}}, b.attentionMask().toLongMatrix());
    }

    @Test
    void tokenAndLabelCountsCountRealTokensAndTrainedLabels() {
        Batch b = new Collator(PAD, false).collate(List.of(LONG, SHORT));
        assertEquals(4, b.tokenCount());
        assertEquals(3, b.labelCount());
        Batch rebuilt = new Batch(b.inputIds(), b.labels(), b.attentionMask());
        assertEquals(4, rebuilt.tokenCount());
        assertEquals(3, rebuilt.labelCount());
    }

    @Test
    void arraysAreInt64() {
        Batch b = new Collator(PAD, false).collate(List.of(SHORT));
        for (var a : List.of(b.inputIds(), b.labels(), b.attentionMask())) {
            assertTrue(a.dataType() == DataType.INT64 || a.dataType().name().equals("LONG"), a.dataType().name());
            assertArrayEquals(new long[] {1, 1}, a.shape());
        }
    }

    @Test
    void padToMultipleOfRoundsTheLengthUp() {
        Collator c = Collator.builder().padId(PAD).padToMultipleOf(4).build();
        assertEquals(4, c.collate(List.of(LONG)).seqLen());
        assertEquals(4, c.collate(List.of(SHORT)).seqLen());
        Sample five = Sample.causal(new int[] {1, 2, 3, 4, 5});
        assertEquals(8, c.collate(List.of(five)).seqLen());
    }

    @Test
    void fixedLengthPadsEveryBatchToIt() {
        Collator c = Collator.builder().padId(PAD).fixedLength(5).padLeft(true).build();
        Batch b = c.collate(List.of(SHORT));
        assertArrayEquals(new long[][] {{PAD, PAD, PAD, PAD, 4}}, b.inputIds().toLongMatrix());
        assertEquals(1, b.tokenCount());
    }

    @Test
    void sampleLongerThanTheFixedLengthIsRejected() {
        Collator c = Collator.builder().padId(PAD).fixedLength(2).build();
        assertThrows(CollieException.class, () -> c.collate(List.of(LONG)));
        assertThrows(CollieException.class, () -> Collator.builder().fixedLength(6).padToMultipleOf(4).build());
    }
}
