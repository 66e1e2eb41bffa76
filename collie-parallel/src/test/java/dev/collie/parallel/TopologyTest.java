package dev.collie.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;

class TopologyTest {
    @Test
    void ranksAreLaidOutTpInnermostThenDpThenPp() {
        Topology t = Topology.of(8, 2, 2, 2);
        // rank = pp*dp*tp + dp*tp + tp
        assertEquals(5, t.rankOf(0, 1, 1));
        for (int r = 0; r < 8; r++) {
            assertEquals(r, t.rankOf(t.dpRank(r), t.tpRank(r), t.ppRank(r)));
        }
        assertEquals(1, t.tpRank(5));
        assertEquals(0, t.dpRank(5));
        assertEquals(1, t.ppRank(5));
        assertArrayEquals(new int[] {4, 5}, t.tpGroup(5));
        assertArrayEquals(new int[] {5, 7}, t.dpGroup(5));
        assertArrayEquals(new int[] {1, 5}, t.ppGroup(5));
    }

    @Test
    void sizesThatDoNotMultiplyToTheWorldAreRejectedNamingTheNumbers() {
        CollieException e = assertThrows(CollieException.class, () -> Topology.of(8, 2, 3, 1));
        assertEquals("dp_size 2 × tp_size 3 × pp_size 1 = 6 does not equal world_size 8", e.getMessage());
        assertThrows(CollieException.class, () -> Topology.of(0, 0, 1, 1));
    }

    @Test
    void modelsThatCannotBeSplitAreRejectedNamingTheField() {
        Topology t = Topology.of(3, 1, 3, 1);
        CollieException e = assertThrows(CollieException.class, () -> t.validateModel(32, 8, 11008, 32000, 32));
        assertEquals("tp_size 3 does not divide num_attention_heads 32", e.getMessage());
        Topology p = Topology.of(4, 1, 2, 2);
        p.validateModel(32, 8, 11008, 32000, 2);
        assertThrows(CollieException.class, () -> p.validateModel(32, 8, 11008, 32001, 2));
        CollieException l = assertThrows(CollieException.class, () -> Topology.of(4, 1, 1, 4).validateModel(4, 4, 4, 4, 3));
        assertEquals("pp_size 4 is larger than num_hidden_layers 3; every pipeline stage needs at least one layer",
                l.getMessage());
    }
}
