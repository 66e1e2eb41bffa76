package dev.collie.parallel.optim;

import dev.collie.core.dist.SingleProcessCommunicator;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.dist.Sharding;
import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Parameter;
import dev.collie.optim.AdaLomo;
import dev.collie.parallel.testing.OneOpThread;
import dev.collie.parallel.comm.LocalRanks;
import dev.collie.parallel.tp.VocabParallelLoss;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pieces under the optimizer oracle, on their own: AdaLomo on tensor-parallel shards (tagged with
 * {@link Parameter#setSharding}) takes exactly the whole tensor's update, and the vocabulary-parallel loss samples
 * the targets one rank samples from the whole softmax, whatever the split and the batch's layout.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
@ExtendWith(OneOpThread.class)
class ShardedStatisticsTest {
    private static final DataType F64 = DataType.DOUBLE;

    static <T> List<T> ranks(int n, LocalRanks.Body<T> body) throws Exception {
        return LocalRanks.run(n, Duration.ofSeconds(10), 20, body);
    }

    private static INDArray block(INDArray full, int dim, int rank, int n) {
        long per = full.size(dim) / n;
        INDArrayIndex[] idx = new INDArrayIndex[full.rank()];
        for (int d = 0; d < idx.length; d++) {
            idx[d] = d == dim ? NDArrayIndex.interval(rank * per, (rank + 1) * per) : NDArrayIndex.all();
        }
        return full.get(idx).dup('c');
    }

    /** A [12, 8] matrix split along rows, a [12, 8] one along columns, a [12] vector split, a [8] one whole. */
    private static Map<String, INDArray> values(long seed) {
        Nd4j.getRandom().setSeed(seed);
        Map<String, INDArray> v = new LinkedHashMap<>();
        v.put("rows", Nd4j.randn(F64, 12, 8).muli(0.05));
        v.put("cols", Nd4j.randn(F64, 12, 8).muli(0.05));
        v.put("vector", Nd4j.randn(F64, 12).muli(0.05));
        v.put("whole", Nd4j.randn(F64, 8).muli(0.05));
        return v;
    }

    private static int dimOf(String name) {
        return switch (name) {
            case "rows", "vector" -> 0;
            case "cols" -> 1;
            default -> -1;
        };
    }

    /** Three AdaLomo steps (clipping threshold low enough that the RMS clip acts) on shards or on the whole. */
    private static Map<String, INDArray> adaLomo(Communicator c, int n) {
        Map<String, INDArray> start = values(3);
        Map<String, Parameter> params = new LinkedHashMap<>();
        start.forEach((name, full) -> {
            int dim = dimOf(name);
            Parameter p = new Parameter(c == null || dim < 0 ? full.dup() : block(full, dim, c.rank(), n));
            if (c != null && dim >= 0) {
                p.setSharding(new Sharding(dim == 0 ? ParallelStyle.COLUMN : ParallelStyle.ROW, c));
            }
            params.put(name, p);
        });
        AdaLomo opt = new AdaLomo(params, 1e-30, 1e-3, 0.5, -0.8, 0, 0, 0.1);
        for (int step = 0; step < 3; step++) {
            Map<String, INDArray> grads = values(100 + step);
            opt.beginStep(0.05);
            for (Map.Entry<String, Parameter> e : params.entrySet()) {
                int dim = dimOf(e.getKey());
                INDArray g = grads.get(e.getKey());
                e.getValue().setGrad(c == null || dim < 0 ? g : block(g, dim, c.rank(), n));
                opt.onGradientReady(e.getValue(), e.getValue().grad());
            }
        }
        Map<String, INDArray> out = new LinkedHashMap<>();
        params.forEach((name, p) -> out.put(name, p.data().dup()));
        return out;
    }

    @ParameterizedTest(name = "{0} ranks")
    @ValueSource(ints = {2, 4})
    void adaLomoOnShardsTakesTheWholeTensorsUpdate(int n) throws Exception {
        Map<String, INDArray> whole = adaLomo(null, 1);
        List<Map<String, INDArray>> shards = ranks(n, c -> adaLomo(c, n));
        for (Map.Entry<String, INDArray> e : whole.entrySet()) {
            int dim = dimOf(e.getKey());
            INDArray joined = dim < 0 ? shards.get(0).get(e.getKey())
                    : Nd4j.concat(dim, shards.stream().map(s -> s.get(e.getKey())).toArray(INDArray[]::new));
            double d = joined.sub(e.getValue()).amaxNumber().doubleValue();
            assertTrue(d < 1e-14, e.getKey() + " differs by " + d);
            double moved = e.getValue().sub(values(3).get(e.getKey())).amaxNumber().doubleValue();
            assertTrue(moved > 1e-4, e.getKey() + " did not move");
        }
    }

    @Test
    void aShardedTagNeedsADimensionOfTheParameter() {
        Parameter p = new Parameter(Nd4j.zeros(F64, 4));
        assertThrows(IllegalArgumentException.class, () -> new Sharding(ParallelStyle.ROW, null));
        try (SingleProcessCommunicator one = new SingleProcessCommunicator()) {
            assertThrows(IllegalArgumentException.class, () -> p.setSharding(new Sharding(ParallelStyle.ROW, one)));
        }
        assertEquals(-1, p.shardDim());
        assertArrayEquals(new long[] {4}, p.fullShape());
    }

    // ---- sampled targets ----------------------------------------------------------------------------------------

    private static final int V = 16;

    /** Logits of 3 rows × 5 positions with large gaps (a sample is not simply the argmax). */
    private static INDArray logits() {
        Nd4j.getRandom().setSeed(21);
        return Nd4j.randn(F64, 15, V);
    }

    /** Row 0 all real, row 1 right-padded (3 real), row 2 with a virtual token (-100) and a hole. */
    private static INDArray mask() {
        return Nd4j.createFromArray(new long[][] {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}, {-100, 1, 0, 1, 1}});
    }

    private static INDArray ids() {
        return Nd4j.createFromArray(new long[][] {{5, 6, 7, 8, 9}, {3, 4, 5, 0, 0}, {0, 11, 0, 12, 13}});
    }

    private static INDArray attention() {
        return Nd4j.createFromArray(new long[][] {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}, {0, 1, 0, 1, 1}});
    }

    @ParameterizedTest(name = "{0} ranks")
    @ValueSource(ints = {2, 4})
    void vocabularyShardsSampleTheTargetsOfTheWholeSoftmax(int n) throws Exception {
        long[] seeds = CausalLmLoss.sampleSeeds(77, ids(), attention());
        INDArray x = logits();
        long[] want = new CausalLmLoss().sampleTargets(x, mask(), seeds).toLongVector();
        List<long[]> got = ranks(n, c -> new VocabParallelLoss(c, V)
                .sampleTargets(block(x, 1, c.rank(), n), mask(), seeds).toLongVector());
        for (long[] g : got) {
            assertArrayEquals(want, g);
        }
        long[] m = mask().reshape(15).toLongVector();
        for (int i = 0; i < 15; i++) {
            assertEquals(m[i] == 1, want[i] != CausalLmLoss.IGNORE_INDEX, "position " + i);
        }
    }

    @Test
    void samplesFollowTheSoftmaxAndTheSeed() {
        // a row whose softmax is one-hot gives that id; over many seeds a two-way softmax splits as it says
        INDArray x = Nd4j.zeros(F64, 1, V).subi(1e3);
        x.putScalar(0, 3, 0.0);
        x.putScalar(0, 9, Math.log(3));
        INDArray mask = Nd4j.createFromArray(new long[][] {{1}});
        int nine = 0;
        int draws = 4000;
        for (int s = 0; s < draws; s++) {
            long t = new CausalLmLoss().sampleTargets(x, mask, new long[] {s}).getLong(0);
            assertTrue(t == 3 || t == 9, "sampled " + t);
            nine += t == 9 ? 1 : 0;
        }
        assertEquals(0.75, nine / (double) draws, 0.03);
    }

    @Test
    void aSequenceDrawsTheSameNoiseWhateverItsBatchAndPadding() {
        INDArray x = logits();
        long[] seeds = CausalLmLoss.sampleSeeds(5, ids(), attention());
        long[] all = new CausalLmLoss().sampleTargets(x, mask(), seeds).toLongVector();
        // row 1 alone, padded to 4 positions on the left instead of 5 on the right: same seed, same targets
        INDArray ids1 = Nd4j.createFromArray(new long[][] {{0, 3, 4, 5}});
        INDArray att1 = Nd4j.createFromArray(new long[][] {{0, 1, 1, 1}});
        long[] seed1 = CausalLmLoss.sampleSeeds(5, ids1, att1);
        assertEquals(seeds[1], seed1[0]);
        INDArray x1 = Nd4j.zeros(F64, 4, V);
        x1.get(NDArrayIndex.interval(1, 4), NDArrayIndex.all()).assign(x.get(NDArrayIndex.interval(5, 8), NDArrayIndex.all()));
        long[] alone = new CausalLmLoss().sampleTargets(x1, att1, seed1).toLongVector();
        assertArrayEquals(new long[] {CausalLmLoss.IGNORE_INDEX, all[5], all[6], all[7]}, alone);
        // another seed, or another sequence, draws other noise
        assertNotEquals(seeds[0], CausalLmLoss.sampleSeeds(6, ids(), attention())[0]);
        assertNotEquals(seeds[0], seeds[1]);
    }
}
