package dev.collie.parallel.dp;

import dev.collie.core.Scope;
import dev.collie.core.data.Dataset;
import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.FusedBackwardOptimizer;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.tensor.Backends;
import dev.collie.core.testing.Agreement;
import dev.collie.core.train.ActivationCheckpointing;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.Distributed;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.optim.AdaLomo;
import dev.collie.optim.AdamW;
import dev.collie.optim.Lomo;
import dev.collie.parallel.testing.Fixtures;
import dev.collie.parallel.comm.LocalRanks;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The harness the ZeRO tests share (a tiny LLaMA trained by the Trainer on n rank threads, against the same
 * model trained on one rank), and checks of the owner assignment and bucket layouts it relies on.
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class ZeroHarnessTest {
    static final int SEQ = 12;
    static final Dataset ROWS = rows(64, SEQ, 64, 11);
    /**
     * AdamW for runs compared with one rank: eps above the gradients' summation-order noise, so the comparison is
     * well-conditioned in fp32 ({@link Agreement#ADAM_EPS_ABOVE_NOISE}); float64 runs use it too.
     */
    static final Function<Map<String, Parameter>, Optimizer> ADAMW =
            p -> new AdamW(p, 0.9, 0.999, Agreement.ADAM_EPS_ABOVE_NOISE, 0.01);
    /** AdaLomo with CoLLiE's settings but eps1 above the noise ({@link Agreement#ADALOMO_EPS1_ABOVE_NOISE}). */
    static final Function<Map<String, Parameter>, Optimizer> ADALOMO =
            p -> new AdaLomo(p, Agreement.ADALOMO_EPS1_ABOVE_NOISE, 1e-3, 1.0, -0.8, 0, 0, 0);
    /**
     * LOMO (SGD inside backward) at an lr where this model trains stably: at lr 0.5 the loss rose from 4.16 to 6.63
     * in 5 steps, and a diverging run multiplies rounding differences each step (1.5e-8 after one step, 1.4e-5 after
     * five, between two ranks and one); at 0.1 they stay at 1.1e-8.
     */
    static final Function<Map<String, Parameter>, Optimizer> LOMO = p -> new Lomo(p, 0, 0, 0.01, null);
    static final double LOMO_LR = 0.1;

    /** ZeRO stage of a run: 0 is plain data parallel. */
    enum Stage { ZERO0, ZERO1, ZERO2, ZERO3 }

    @AfterAll
    static void restoreOpThreads() {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }

    /** Hidden 32, 4 heads, 2 KV heads, intermediate 64, vocabulary 64, 2 layers. */
    static DecoderConfig config(boolean tied) {
        return config(tied, 64);
    }

    /** {@link #config(boolean)} with {@code vocab} rows in the embedding (and head). */
    static DecoderConfig config(boolean tied, int vocab) {
        return DecoderConfig.builder().vocabSize(vocab).hiddenSize(32).intermediateSize(64).numHiddenLayers(2)
                .numAttentionHeads(4).numKeyValueHeads(2).maxPositionEmbeddings(64).tieWordEmbeddings(tied).build();
    }

    /** The same initial weights on every thread (ND4J's generator is thread-local). */
    static DecoderForCausalLM model(DecoderConfig c, DataType dtype) {
        Nd4j.getRandom().setSeed(1234);
        return new DecoderForCausalLM(c, dtype);
    }

    static Dataset rows(int count, int len, int vocab, long seed) {
        return Fixtures.causalRows(count, len, vocab, seed);
    }

    /**
     * What a run leaves: rank 0's losses, every rank's weights (all gathered) and figures, and the parameters
     * ZeRO-2/3 split into row blocks.
     */
    record Run(List<Double> losses, List<Map<String, INDArray>> weights, List<RankMemory> memory,
               long[] optimizerBytes, long[] bytesPerStep, long[] predictedBytesPerStep, long[] peakGathered,
               List<String> split) {
    }

    /**
     * A run's shape: ranks, steps, accumulation, bucket size, precision, tied embeddings, learning rate, rows
     * of a rank's micro-batch, worker threads per rank, activation checkpointing, the vocabulary (rows of the
     * embedding and head) and when ZeRO-2/3 split parameters into row blocks (null: the public constructors'
     * default; a fused-backward optimizer gets {@link SplitPolicy#OFF} then, as callers must give it).
     */
    record Setup(int ranks, int steps, int accum, long bucketBytes, DataType dtype, boolean tied, double lr,
                 int rowsPerRank, int workers, boolean recompute, int vocab, SplitPolicy split) {
        Setup(int ranks, int steps, int accum, long bucketBytes, DataType dtype, boolean tied, double lr) {
            this(ranks, steps, accum, bucketBytes, dtype, tied, lr, 1, 1, false, 64, null);
        }

        Setup(int ranks, int steps, int accum, long bucketBytes, DataType dtype, boolean tied, double lr,
              int rowsPerRank, int workers) {
            this(ranks, steps, accum, bucketBytes, dtype, tied, lr, rowsPerRank, workers, false, 64, null);
        }

        Setup withRecompute() {
            return new Setup(ranks, steps, accum, bucketBytes, dtype, tied, lr, rowsPerRank, workers, true, vocab, split);
        }

        Setup withVocab(int v) {
            return new Setup(ranks, steps, accum, bucketBytes, dtype, tied, lr, rowsPerRank, workers, recompute, v, split);
        }

        Setup withSplit(SplitPolicy p) {
            return new Setup(ranks, steps, accum, bucketBytes, dtype, tied, lr, rowsPerRank, workers, recompute, vocab, p);
        }

        CollieConfig collie(int microBatch) {
            return CollieConfig.builder().shuffle(false).lr(lr).trainMicroBatchSize(microBatch)
                    .gradientAccumulationSteps(accum).maxSteps(steps).workerThreads(workers).build();
        }
    }

    static Setup setup(int ranks) {
        return new Setup(ranks, 5, 1, 4096, DataType.FLOAT, false, 1e-2);
    }

    /** One rank with micro-batches of all ranks' rows: the global batch of the data-parallel run. */
    static Run single(Setup s, Function<Map<String, Parameter>, Optimizer> opt) {
        DecoderForCausalLM model = model(config(s.tied(), s.vocab()), s.dtype());
        ActivationCheckpointing.apply(model, s.recompute());
        Optimizer o = opt.apply(model.namedParameters());
        List<StepStats> stats = Trainer.builder().model(model).optimizer(o).config(s.collie(s.ranks() * s.rowsPerRank()))
                .trainData(ROWS).build().train();
        List<Double> losses = stats.stream().map(StepStats::loss).toList();
        return new Run(losses, List.of(copy(model)), List.of(RankMemory.of(model.module().trainableParameters(), 0)),
                new long[] {o.stateBytes()}, new long[] {0}, new long[] {0}, new long[] {0}, List.of());
    }

    static Map<String, INDArray> copy(DecoderForCausalLM model) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        model.namedParameters().forEach((n, p) -> out.put(n, p.data().dup()));
        return out;
    }

    /** Runs a body on two ZeRO-3 ranks, each over its own model, and returns the results in rank order. */
    interface TwoZero3Ranks {
        List<Map<String, INDArray>> run(Zero3Body body) throws Exception;
    }

    interface Zero3Body {
        Map<String, INDArray> run(DecoderForCausalLM model, Zero3 zero) throws Exception;
    }

    /** The Trainer of a ZeRO-3 rank of two: AdamW over its owned parameters, {@code steps} steps of {@link #ROWS}. */
    static Trainer zero3Trainer(DecoderForCausalLM m, Zero3 z, int steps) {
        return Trainer.builder().model(m).optimizer(ADAMW.apply(z.ownedParameters()))
                .config(setup(2).collie(1).toBuilder().maxSteps(steps).build())
                .trainData(ROWS).distributed(z).localRanks(2).build();
    }

    /**
     * A ZeRO-3 checkpoint saved and resumed inside gathered scopes continues exactly: on every rank, 2 steps, a save,
     * a resume and the third step end with the weights of 3 steps straight.
     */
    static void assertZero3CheckpointResumesExactly(Path dir, TwoZero3Ranks ranks) throws Exception {
        List<Map<String, INDArray>> straight = ranks.run((m, z) -> {
            zero3Trainer(m, z, 3).train();
            try (Scope all = z.gathered()) {
                return copy(m);
            }
        });
        ranks.run((m, z) -> {
            Trainer t = zero3Trainer(m, z, 2);
            t.train();
            try (Scope all = z.gathered()) {      // the Trainer reads every value when it saves
                t.save(dir);
            }
            return null;
        });
        List<Map<String, INDArray>> resumed = ranks.run((m, z) -> {
            Trainer t = zero3Trainer(m, z, 3);
            // the Trainer writes every value when it resumes; a split parameter's go back into its row blocks on release
            try (Scope all = z.gathered()) {
                t.resume(dir);
            }
            assertEquals(1, t.train().size());
            try (Scope all = z.gathered()) {
                return copy(m);
            }
        });
        for (int r = 0; r < 2; r++) {
            assertEquals(0.0, Agreement.maxAbsDiff(resumed.get(r), straight.get(r)), "rank " + r);
        }
    }

    private record RankResult(List<Double> losses, Map<String, INDArray> weights, RankMemory memory, long optimizerBytes,
                              long bytesPerStep, long predicted, long peakGathered, List<String> split) {
    }

    /** {@code s.ranks()} rank threads, micro-batches of {@code s.rowsPerRank()} rows, the given ZeRO stage. */
    static Run ranks(Setup s, Stage stage, Function<Map<String, Parameter>, Optimizer> opt) throws Exception {
        int n = s.ranks();
        // every rank's failure is kept (suppressed behind the first cause): the first one seen may be a consequence
        List<RankResult> rs = LocalRanks.run(n, Duration.ofSeconds(10), 18, comm -> rank(s, stage, opt, comm));
        List<Map<String, INDArray>> weights = new ArrayList<>();
        List<RankMemory> memory = new ArrayList<>();
        long[] state = new long[n];
        long[] bytes = new long[n];
        long[] predicted = new long[n];
        long[] peak = new long[n];
        for (int r = 0; r < n; r++) {
            weights.add(rs.get(r).weights());
            memory.add(rs.get(r).memory());
            state[r] = rs.get(r).optimizerBytes();
            bytes[r] = rs.get(r).bytesPerStep();
            predicted[r] = rs.get(r).predicted();
            peak[r] = rs.get(r).peakGathered();
            assertEquals(rs.get(0).losses(), rs.get(r).losses(), "ranks report different losses");
        }
        for (RankResult r : rs) {
            assertEquals(rs.get(0).split(), r.split(), "ranks split different parameters");
        }
        return new Run(rs.get(0).losses(), weights, memory, state, bytes, predicted, peak, rs.get(0).split());
    }

    private static RankResult rank(Setup s, Stage stage, Function<Map<String, Parameter>, Optimizer> opt,
                                   Communicator comm) throws Exception {
        DecoderForCausalLM model = model(config(s.tied(), s.vocab()), s.dtype());
        ActivationCheckpointing.apply(model, s.recompute());
        // a fused-backward optimizer needs whole parameters: the caller says so (Parallelism: from the CLI)
        boolean fused = opt.apply(Map.of()) instanceof FusedBackwardOptimizer;
        SplitPolicy split = s.split() != null ? s.split() : fused ? SplitPolicy.OFF : SplitPolicy.DEFAULT;
        Distributed sync;
        Map<String, Parameter> mine;
        switch (stage) {
            case ZERO0 -> {
                sync = new DataParallel(model.namedParameters(), comm, s.bucketBytes());
                mine = model.namedParameters();
            }
            case ZERO1 -> {
                Zero1 z = new Zero1(model.namedParameters(), comm);
                sync = z;
                mine = z.ownedParameters();
            }
            case ZERO2 -> {
                Zero2 z = s.split() == null && !fused ? new Zero2(model.namedParameters(), comm, s.bucketBytes())
                        : new Zero2(model.namedParameters(), comm, s.bucketBytes(), split);
                sync = z;
                mine = z.ownedParameters();
            }
            default -> {
                Zero3 z = s.split() == null && !fused ? new Zero3(model, comm, s.bucketBytes())
                        : new Zero3(model, comm, s.bucketBytes(), split);
                sync = z;
                mine = z.ownedParameters();
            }
        }
        try {
            Optimizer o = opt.apply(mine);
            Trainer t = Trainer.builder().model(model).optimizer(o).config(s.collie(s.rowsPerRank())).trainData(ROWS)
                    .distributed(sync).localRanks(s.ranks()).build();
            long before = comm.bytesSent();
            List<StepStats> stats = t.train();
            long perStep = (comm.bytesSent() - before) / s.steps();
            RankMemory memory = switch (stage) {
                case ZERO0 -> ((DataParallel) sync).memory();
                case ZERO1 -> ((Zero1) sync).memory();
                case ZERO2 -> ((Zero2) sync).memory();
                case ZERO3 -> ((Zero3) sync).memory();
            };
            long predicted = switch (stage) {
                case ZERO2 -> ((Zero2) sync).gradientBytesSentPerStep() + ((Zero2) sync).broadcastBytesSentPerStep();
                case ZERO3 -> ((Zero3) sync).gradientBytesSentPerStep();
                default -> 0;
            };
            List<String> splitNames = switch (stage) {
                case ZERO2 -> ((Zero2) sync).splitParameters();
                case ZERO3 -> ((Zero3) sync).splitParameters();
                default -> List.of();
            };
            long peak = 0;
            Map<String, INDArray> weights;
            if (sync instanceof Zero3 z) {
                peak = z.peakGatheredBytes();
                try (Scope all = z.gathered()) {
                    weights = copy(model);
                }
                for (Parameter p : model.module().trainableParameters()) {
                    assertEquals(z.owner(p) == comm.rank(), p.isResident(), "residency after releaseAll: " + p);
                }
            } else {
                weights = copy(model);
            }
            return new RankResult(stats.stream().map(StepStats::loss).toList(), weights, memory, o.stateBytes(), perStep,
                    predicted, peak, splitNames);
        } finally {
            ((AutoCloseable) sync).close();
        }
    }

    /** Whether {@code e}, its causes or anything suppressed along the way has a message containing {@code text}. */
    static boolean mentions(Throwable e, String text) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (String.valueOf(t.getMessage()).contains(text)) {
                return true;
            }
            for (Throwable s : t.getSuppressed()) {
                if (mentions(s, text)) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * A run that does not diverge: no step's loss more than 5 % above the first (LOMO at lr 0.5 reached +60 % by step
     * 5, where rounding differences grow by the step; the rows change every step, so the loss is not monotone).
     */
    static void assertStable(Run run) {
        double first = run.losses().get(0);
        for (double l : run.losses()) {
            assertTrue(l < 1.05 * first, "a diverging run cannot be compared across layouts: " + run.losses());
        }
    }

    /**
     * Rank 0's losses match the single run's, and every rank's final weights match it. Callers keep the comparison
     * well-conditioned: {@link #ADAMW}, {@link #ADALOMO}, {@link #LOMO} at {@link #LOMO_LR}, or float64.
     */
    static void assertSameAsOneRank(Run one, Run many, double tolerance) {
        assertEquals(one.losses().size(), many.losses().size());
        double worstLoss = 0;
        for (int s = 0; s < one.losses().size(); s++) {
            worstLoss = Math.max(worstLoss, Math.abs(one.losses().get(s) - many.losses().get(s)));
        }
        Agreement.within("losses vs one rank", worstLoss, tolerance);
        double worst = 0;
        for (int r = 0; r < many.weights().size(); r++) {
            worst = Math.max(worst, Agreement.maxAbsDiff(many.weights().get(r), one.weights().get(0)));
        }
        Agreement.within("every rank's weights vs one rank's", worst, tolerance);
    }

    // ---------------------------------------------------------------- checks of the pieces

    private static List<Parameter> params(long... sizes) {
        List<Parameter> out = new ArrayList<>();
        for (long s : sizes) {
            out.add(new Parameter(Nd4j.zeros(DataType.FLOAT, s)));
        }
        return out;
    }

    @Test
    void balancedOwnersGiveEveryRankAParameterAndEvenLoads() {
        List<Parameter> ps = params(100, 90, 50, 40, 30, 10, 5);
        Map<Parameter, Integer> o = Owners.balanced(ps, 3);
        long[] load = new long[3];
        ps.forEach(p -> load[o.get(p)] += p.numel());
        assertTrue(load[0] > 0 && load[1] > 0 && load[2] > 0);
        assertTrue(Arrays.stream(load).max().getAsLong() - Arrays.stream(load).min().getAsLong() <= 30,
                Arrays.toString(load));
    }

    @Test
    void perBucketOwnersBalanceEachBucketAndStillCoverEveryRank() {
        List<Parameter> a = params(64, 64, 64, 64);
        List<Parameter> b = params(200);
        List<Parameter> c = params(200);
        Map<Parameter, Integer> o = Owners.balancedPerGroup(List.of(a, b, c), 4);
        // the four equal parameters of the first bucket go to four different ranks
        assertEquals(4, a.stream().map(o::get).distinct().count());
        // single-parameter buckets go to the least-loaded ranks overall
        assertTrue(!o.get(b.get(0)).equals(o.get(c.get(0))));
        // too few parameters for a per-bucket balance to cover every rank: the global greedy takes over
        List<Parameter> d = params(10);
        List<Parameter> e = params(10);
        Map<Parameter, Integer> o2 = Owners.balancedPerGroup(List.of(d, e), 2);
        assertTrue(!o2.get(d.get(0)).equals(o2.get(e.get(0))));
    }

    @Test
    void bucketLayoutsChooseReduceScatterOnlyWhenItSendsLess() throws Exception {
        DecoderForCausalLM[] models = new DecoderForCausalLM[4];
        List<long[]> got = LocalRanks.run(4, Duration.ofSeconds(10), 15, c -> {
            DecoderForCausalLM m = model(config(false), DataType.FLOAT);
            models[c.rank()] = m;
            try (Zero2 big = new Zero2(m.namedParameters(), c); Zero2 small = new Zero2(m.namedParameters(), c, 4096)) {
                return new long[] {big.bucketCount(), big.scatteredBucketCount(), small.bucketCount(),
                        small.scatteredBucketCount(), big.gradientBytesSentPerStep()};
            }
        });
        for (long[] r : got) {
            assertEquals(1, r[0], "the whole tiny model fits one 25 MB bucket");
            assertEquals(1, r[1], "a balanced bucket is reduce-scattered");
            assertTrue(r[2] > 5, "4 KB buckets: " + r[2]);
            // an 8 KB matrix is a bucket of its own: all-reduced; the buckets of small tensors are scattered
            assertTrue(r[3] > 0 && r[3] < r[2], r[3] + " of " + r[2]);
            long total = models[0].module().trainableParameters().stream().mapToLong(p -> p.numel() * 4).sum();
            // one reduce-scatter of the model padded to 4 sections: (n−1)·section, at most 2(n−1)/n·S
            assertTrue(r[4] < 2 * 3 * total / 4, r[4] + " vs all-reduce " + (2 * 3 * total / 4));
        }
    }
}
