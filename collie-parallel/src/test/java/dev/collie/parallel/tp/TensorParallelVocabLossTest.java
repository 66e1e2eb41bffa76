package dev.collie.parallel.tp;

import dev.collie.core.CollieException;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Tape;
import dev.collie.parallel.testing.OneOpThread;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static dev.collie.parallel.tp.TpRanks.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/** Cross-entropy over vocabulary shards: against {@link CausalLmLoss} on the whole logits, finite differences, bytes. */
@Timeout(value = 15, unit = TimeUnit.SECONDS)
@ExtendWith(OneOpThread.class)
class TensorParallelVocabLossTest {
    private static final DataType F64 = DataType.DOUBLE;
    private static final int V = 12;
    private static final int ROWS = 8;
    private static final int I = CausalLmLoss.IGNORE_INDEX;
    /** Targets: rows 0-2 in shard 0 of 2, rows 3-5 in shard 1, two ignored. */
    private static final long[] TARGETS = {0, 5, 3, 6, 11, 9, I, I};

    private static INDArray logits(long seed) {
        Nd4j.getRandom().setSeed(seed);
        return Nd4j.randn(F64, ROWS, V).muli(3.0);
    }

    private static INDArray shard(INDArray full, int rank, int n) {
        long w = full.size(1) / n;
        return full.get(all(), interval(rank * w, (rank + 1) * w)).dup('c');
    }

    private void matchesTheWholeLoss(int n, long[] targets) throws Exception {
        INDArray x = logits(11);
        INDArray t = Nd4j.createFromArray(targets);
        INDArray[] want = new CausalLmLoss().crossEntropy(x.dup(), t, true);
        List<INDArray[]> got = TpRanks.run(n, c -> {
            VocabParallelLoss loss = new VocabParallelLoss(c, V);
            INDArray local = shard(x, c.rank(), n);
            INDArray[] r = loss.crossEntropy(local, t, true);
            assertSame(local, r[1], "the gradient overwrites the logits");
            INDArray[] noGrad = loss.crossEntropy(shard(x, c.rank(), n), t, false);
            assertEquals(r[0].getDouble(0), noGrad[0].getDouble(0), 0.0);
            return new INDArray[] {r[0], r[1]};
        });
        double l0 = got.get(0)[0].getDouble(0);
        for (int k = 0; k < n; k++) {
            double l = got.get(k)[0].getDouble(0);
            assertEquals(l0, l, 0.0, "every rank has the same loss, bit for bit");
            double lossDiff = Math.abs(l - want[0].getDouble(0));
            double gradDiff = maxAbsDiff(shard(want[1], k, n), got.get(k)[1]);
            System.out.printf("tp=%d rank %d: loss %.15f vs %.15f (|diff| %.3g), gradient max |diff| %.3g%n",
                    n, k, l, want[0].getDouble(0), lossDiff, gradDiff);
            assertTrue(lossDiff <= 1e-12, "loss differs by " + lossDiff);
            assertTrue(gradDiff <= 1e-12, "gradient of rank " + k + " differs by " + gradDiff);
        }
    }

    @Test
    void equalsTheCrossEntropyOfTheGatheredLogits() throws Exception {
        matchesTheWholeLoss(2, TARGETS);
        matchesTheWholeLoss(3, TARGETS);
        matchesTheWholeLoss(4, TARGETS);
    }

    @Test
    void rowsWhoseTargetsAllLieInTheOtherShard() throws Exception {
        // every target on rank 1: rank 0's gradient is the softmax alone
        matchesTheWholeLoss(2, new long[] {6, 7, 11, 8, 6, 10, 9, 6});
        matchesTheWholeLoss(2, new long[] {0, 1, 2, 3, 4, 5, 0, 1});
    }

    @Test
    void allTargetsIgnoredGiveNaNAndAZeroGradient() throws Exception {
        INDArray x = logits(12);
        long[] ignored = new long[ROWS];
        Arrays.fill(ignored, I);
        INDArray t = Nd4j.createFromArray(ignored);
        INDArray[] want = new CausalLmLoss().crossEntropy(x.dup(), t, true);
        assertTrue(Double.isNaN(want[0].getDouble(0)));
        List<INDArray[]> got = TpRanks.run(2, c -> new VocabParallelLoss(c, V).crossEntropy(shard(x, c.rank(), 2), t, true));
        for (INDArray[] r : got) {
            assertTrue(Double.isNaN(r[0].getDouble(0)));
            assertEquals(0.0, r[1].amaxNumber().doubleValue(), 0.0);
        }
    }

    @Test
    void gradientMatchesFiniteDifferencesOfTheLocalLogits() throws Exception {
        INDArray x = logits(13);
        INDArray t = Nd4j.createFromArray(TARGETS);
        double h = 1e-6;
        // the same (rank, row, column) samples on every rank: the owner perturbs, both compute the loss
        Random rnd = new Random(3);
        int samples = 40;
        int[][] at = new int[samples][];
        for (int s = 0; s < samples; s++) {
            at[s] = new int[] {rnd.nextInt(2), rnd.nextInt(ROWS), rnd.nextInt(V / 2)};
        }
        List<Double> worst = TpRanks.run(2, c -> {
            VocabParallelLoss loss = new VocabParallelLoss(c, V);
            INDArray local = shard(x, c.rank(), 2);
            INDArray grad = loss.crossEntropy(local.dup(), t, true)[1];
            double maxErr = 0;
            for (int[] s : at) {
                boolean mine = s[0] == c.rank();
                double orig = local.getDouble(s[1], s[2]);
                if (mine) {
                    local.putScalar(s[1], s[2], orig + h);
                }
                double plus = loss.crossEntropy(local, t, false)[0].getDouble(0);
                if (mine) {
                    local.putScalar(s[1], s[2], orig - h);
                }
                double minus = loss.crossEntropy(local, t, false)[0].getDouble(0);
                if (mine) {
                    local.putScalar(s[1], s[2], orig);
                    double numeric = (plus - minus) / (2 * h);
                    double analytic = grad.getDouble(s[1], s[2]);
                    double err = Math.abs(numeric - analytic);
                    maxErr = Math.max(maxErr, err);
                    assertTrue(err < 1e-8, String.format("rank %d [%d, %d]: analytic %.10g vs numeric %.10g",
                            c.rank(), s[1], s[2], analytic, numeric));
                    if (TARGETS[s[1]] == I) {
                        assertEquals(0.0, analytic, 0.0, "ignored row");
                    }
                }
            }
            return maxErr;
        });
        System.out.printf("finite differences: max |analytic - numeric| %.3g (rank 0), %.3g (rank 1)%n",
                worst.get(0), worst.get(1));
    }

    @Test
    void sendsThreeNumbersPerRowAndNeverTheLogits() throws Exception {
        INDArray x = logits(14);
        INDArray t = Nd4j.createFromArray(TARGETS);
        List<Long> bytes = TpRanks.run(2, c -> {
            long before = c.bytesSent();
            new VocabParallelLoss(c, V).crossEntropy(shard(x, c.rank(), 2), t, true);
            return c.bytesSent() - before;
        });
        // two ranks: each sends 2(n-1)/n = 1 times each all-reduced array: max [rows] + (sumexp, target) [2 rows]
        for (long b : bytes) {
            assertEquals(3L * ROWS * Double.BYTES, b);
        }
    }

    @Test
    void causalLossForwardAndBackwardWithShiftedLabels() throws Exception {
        // the CausalLmLoss entry points (shift, tape, scale) run unchanged over the overridden cross-entropy
        INDArray x = logits(15);
        INDArray labels = Nd4j.createFromArray(new long[][] {{3, 7, I, 1}, {11, 0, 6, 2}});
        Tape tape = Tape.forTraining(2, 4);
        CausalLmLoss whole = new CausalLmLoss();
        double want = whole.forward(tape, x.dup(), labels);
        INDArray wantGrad = whole.backward(tape, 0.5);
        List<Object[]> got = TpRanks.run(2, c -> {
            Tape tt = Tape.forTraining(2, 4);
            VocabParallelLoss loss = new VocabParallelLoss(c, V);
            double l = loss.forward(tt, shard(x, c.rank(), 2), labels);
            return new Object[] {l, loss.backward(tt, 0.5)};
        });
        for (int k = 0; k < 2; k++) {
            assertEquals(want, (double) got.get(k)[0], 1e-12);
            assertTrue(maxAbsDiff(shard(wantGrad, k, 2), (INDArray) got.get(k)[1]) <= 1e-12);
        }
    }

    @Test
    void labelsOutsideTheVocabularyAreRejected() throws Exception {
        INDArray x = logits(16);
        List<String> msgs = TpRanks.run(2, c -> assertThrows(CollieException.class,
                () -> new VocabParallelLoss(c, V).crossEntropy(shard(x, c.rank(), 2),
                        Nd4j.createFromArray(new long[] {0, 1, 2, 12, 0, 0, 0, 0}), true)).getMessage());
        assertEquals("label id 12 is outside the vocabulary [0, 12)", msgs.get(0));
    }
}
