package dev.collie.core.train;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CoLLiE's TopkQueue rules: the best k stay, a tie goes to the newer, NaN never enters, -1 keeps all. */
class TopKTest {
    private static List<String> names(TopK t) {
        return t.entries().stream().map(TopK.Entry::name).toList();
    }

    @Test
    void smallerIsBetterKeepsTheKSmallestAndSaysWhatItPushedOut() {
        TopK t = new TopK(2, TrackedMetric.min("loss"));
        assertTrue(t.offer("a", 3.0).kept());
        assertTrue(t.offer("b", 1.0).kept());
        TopK.Offer c = t.offer("c", 4.0);
        assertFalse(c.kept());
        assertNull(c.evicted());
        TopK.Offer d = t.offer("d", 2.0);
        assertTrue(d.kept());
        assertEquals("a", d.evicted().name());
        assertEquals(List.of("b", "d"), names(t));
    }

    @Test
    void largerIsBetterKeepsTheKLargest() {
        TopK t = new TopK(2, TrackedMetric.max("acc"));
        t.offer("a", 0.5);
        t.offer("b", 0.7);
        assertEquals("a", t.offer("c", 0.6).evicted().name());
        assertFalse(t.offer("d", 0.1).kept());
        assertEquals(List.of("b", "c"), names(t));
    }

    @Test
    void aTieWithTheWorstReplacesTheOldestOfThem() {
        TopK t = new TopK(3, TrackedMetric.min("loss"));
        t.offer("a", 2.0);
        t.offer("b", 1.0);
        t.offer("c", 2.0);
        TopK.Offer d = t.offer("d", 2.0);
        assertTrue(d.kept());
        assertEquals("a", d.evicted().name());
        assertEquals(List.of("b", "c", "d"), names(t));
    }

    @Test
    void aValueThatIsNotFiniteIsNeverKeptEvenWithRoom() {
        TopK t = new TopK(3, TrackedMetric.min("loss"));
        assertFalse(t.offer("nan", Double.NaN).kept());
        assertFalse(t.offer("inf", Double.NEGATIVE_INFINITY).kept());
        t.offer("a", 5.0);
        assertEquals(List.of("a"), names(t));
    }

    @Test
    void minusOneKeepsEveryFiniteValue() {
        TopK t = new TopK(-1, TrackedMetric.max("acc"));
        for (int i = 0; i < 5; i++) {
            assertNull(t.offer("e" + i, -i).evicted());
        }
        t.offer("nan", Double.NaN);
        assertEquals(List.of("e0", "e1", "e2", "e3", "e4"), names(t));
    }
}
