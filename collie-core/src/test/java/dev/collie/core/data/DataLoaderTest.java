package dev.collie.core.data;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

import static dev.collie.core.data.DatasetsTest.numbered;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class DataLoaderTest {
    private static final Collator COLLATOR = new Collator(0, false);

    private static DataLoader.Builder loader(int n) {
        return DataLoader.builder(numbered(n), COLLATOR);
    }

    /** The (one-token) samples of a step, micro-batch by micro-batch. */
    private static List<List<Long>> ids(List<Batch> step) {
        List<List<Long>> out = new ArrayList<>();
        for (Batch b : step) {
            List<Long> rows = new ArrayList<>();
            for (long[] row : b.inputIds().toLongMatrix()) {
                rows.add(row[0]);
            }
            out.add(rows);
        }
        return out;
    }

    private static List<List<List<Long>>> all(Iterator<List<Batch>> steps) {
        List<List<List<Long>>> out = new ArrayList<>();
        steps.forEachRemaining(s -> out.add(ids(s)));
        return out;
    }

    @Test
    void withoutShuffleBatchesFollowFileOrderAndTheLastShortBatchIsKept() {
        DataLoader dl = loader(10).microBatchSize(3).shuffle(false).build();
        assertEquals(4, dl.stepsPerEpoch());
        List<List<List<Long>>> steps = new ArrayList<>();
        dl.epoch(0).forEach(s -> steps.add(ids(s)));
        assertEquals(List.of(
                List.of(List.of(0L, 1L, 2L)),
                List.of(List.of(3L, 4L, 5L)),
                List.of(List.of(6L, 7L, 8L)),
                List.of(List.of(9L))), steps);
    }

    @Test
    void dropLastDropsTheIncompleteStep() {
        DataLoader dl = loader(10).microBatchSize(3).shuffle(false).dropLast(true).build();
        assertEquals(3, dl.stepsPerEpoch());
        assertArrayEquals(new int[] {6, 7, 8}, dl.rowIndices(0, 2));
    }

    @Test
    void stepHoldsGradAccumMicroBatches() {
        DataLoader dl = loader(10).microBatchSize(2).gradAccum(3).shuffle(false).build();
        assertEquals(2, dl.stepsPerEpoch());
        assertEquals(List.of(List.of(0L, 1L), List.of(2L, 3L), List.of(4L, 5L)), ids(dl.step(0, 0)));
        assertEquals(List.of(List.of(6L, 7L), List.of(8L, 9L)), ids(dl.step(0, 1)));
    }

    @Test
    void shuffleIsDeterministicForASeedAndDiffersAcrossEpochsAndSeeds() {
        DataLoader a = loader(64).microBatchSize(4).seed(42).build();
        DataLoader b = loader(64).microBatchSize(4).seed(42).build();
        DataLoader other = loader(64).microBatchSize(4).seed(43).build();
        for (int epoch = 0; epoch < 2; epoch++) {
            for (int s = 0; s < a.stepsPerEpoch(); s++) {
                assertArrayEquals(a.rowIndices(epoch, s), b.rowIndices(epoch, s));
            }
        }
        assertNotEquals(epochOrder(a, 0), epochOrder(a, 1));
        assertNotEquals(epochOrder(a, 0), epochOrder(other, 0));
        assertEquals(epochOrder(a, 1), epochOrder(other, 0)); // seed + epoch: 42 + 1 == 43 + 0
    }

    private static List<Integer> epochOrder(DataLoader dl, int epoch) {
        List<Integer> out = new ArrayList<>();
        for (int s = 0; s < dl.stepsPerEpoch(); s++) {
            Arrays.stream(dl.rowIndices(epoch, s)).forEach(out::add);
        }
        return out;
    }

    @Test
    void shuffledEpochVisitsEverySampleOnce() {
        DataLoader dl = loader(37).microBatchSize(5).seed(3).build();
        List<Integer> order = epochOrder(dl, 0);
        assertEquals(37, order.size());
        assertEquals(37, new HashSet<>(order).size());
        assertNotEquals(epochOrder(loader(37).microBatchSize(5).shuffle(false).build(), 0), order);
    }

    @Test
    void distributedSharesAreContiguousDisjointAndCoverTheEpoch() {
        int n = 48;
        int micro = 2;
        int accum = 2;
        int replicas = 3;
        List<Integer> order = epochOrder(loader(n).seed(5).build(), 1); // one rank, one row a step
        Set<Integer> seen = new HashSet<>();
        for (int r = 0; r < replicas; r++) {
            DataLoader dl = loader(n).microBatchSize(micro).gradAccum(accum).numReplicas(replicas).rank(r)
                    .seed(5).build();
            assertEquals(4, dl.stepsPerEpoch());
            for (int s = 0; s < dl.stepsPerEpoch(); s++) {
                int[] rows = dl.rowIndices(1, s);
                int first = s * micro * accum * replicas + r * micro * accum;
                int[] expected = order.subList(first, first + micro * accum).stream().mapToInt(i -> i).toArray();
                assertArrayEquals(expected, rows);
                for (int row : rows) {
                    assertFalse(!seen.add(row), "row " + row + " read twice");
                }
                List<Batch> step = dl.step(1, s);
                assertEquals(accum, step.size());
                assertEquals(List.of(List.of((long) rows[0], (long) rows[1]), List.of((long) rows[2], (long) rows[3])),
                        ids(step));
            }
        }
        assertEquals(n, seen.size());
    }

    @Test
    void distributedLastStepGivesEveryRankTheSameNumberOfRows() {
        int n = 14; // one global batch of 12 and 2 rows left for 3 ranks
        List<Integer> order = epochOrder(loader(n).shuffle(false).build(), 0);
        Set<Integer> seen = new HashSet<>();
        for (int r = 0; r < 3; r++) {
            DataLoader dl = loader(n).microBatchSize(2).gradAccum(2).numReplicas(3).rank(r).shuffle(false).build();
            assertEquals(2, dl.stepsPerEpoch());
            int[] last = dl.rowIndices(0, 1);
            assertEquals(1, last.length);
            assertEquals(order.get((12 + r) % n), last[0]); // rank 2 wraps round to the start of the order
            Arrays.stream(dl.rowIndices(0, 0)).forEach(seen::add);
            seen.add(last[0]);
            assertEquals(1, dl.step(0, 1).size());
        }
        assertEquals(n, seen.size());
        DataLoader dropping = loader(n).microBatchSize(2).gradAccum(2).numReplicas(3).dropLast(true).build();
        assertEquals(1, dropping.stepsPerEpoch());
    }

    @Test
    void resumingFromACompletedStepCountYieldsTheSameBatches() {
        DataLoader dl = loader(10).microBatchSize(2).seed(9).build();
        assertEquals(5, dl.stepsPerEpoch());
        List<List<List<Long>>> full = all(dl.steps(0, 15));
        assertEquals(15, full.size());
        DataLoader restarted = loader(10).microBatchSize(2).seed(9).build();
        assertEquals(full.subList(7, 15), all(restarted.steps(7, 15)));
        DataLoader.Position p = restarted.position(7);
        assertEquals(new DataLoader.Position(1, 2), p);
        List<List<List<Long>>> rest = new ArrayList<>();
        restarted.epoch(p.epoch(), p.step()).forEach(s -> rest.add(ids(s)));
        assertEquals(full.subList(7, 10), rest);
        List<List<List<Long>>> epoch1 = new ArrayList<>();
        restarted.epoch(1).forEach(s -> epoch1.add(ids(s)));
        assertEquals(full.subList(5, 10), epoch1);
    }

    @Test
    void badOptionsAreRejected() {
        assertThrows(CollieException.class, () -> loader(4).microBatchSize(0).build());
        assertThrows(CollieException.class, () -> loader(4).gradAccum(0).build());
        assertThrows(CollieException.class, () -> loader(4).numReplicas(2).rank(2).build());
        assertThrows(CollieException.class, () -> loader(4).rank(-1).build());
        assertThrows(CollieException.class, () -> loader(0).build());
    }

    @Test
    void dataSetSmallerThanOneGlobalBatchWithDropLastIsRejected() {
        assertThrows(CollieException.class, () -> loader(5).microBatchSize(2).numReplicas(3).dropLast(true).build());
        assertEquals(1, loader(5).microBatchSize(2).numReplicas(3).build().stepsPerEpoch());
    }
}
