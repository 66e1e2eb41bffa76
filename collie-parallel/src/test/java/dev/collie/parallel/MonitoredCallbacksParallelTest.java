package dev.collie.parallel;

import dev.collie.core.data.Dataset;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.tensor.Backends;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CheckpointCallback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.EarlyStoppingCallback;
import dev.collie.core.train.LoadBestModelCallback;
import dev.collie.core.train.LossHistory;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.TrackedMetric;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.optim.AdamW;
import dev.collie.parallel.comm.LocalRanks;
import dev.collie.parallel.testing.Fixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The callbacks that watch an evaluation value, on ranks as threads: early stopping ends every data-parallel rank
 * after the same step (also when only one rank asks), and top-k checkpoints with loading the best back give under
 * dp 2 (ZeRO-0 and ZeRO-3) and dp 2 × tp 2 × pp 2 (ZeRO-1) what one rank gives.
 */
class MonitoredCallbacksParallelTest {
    private static final Path TINY_TIED = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama-tied");
    private static final Dataset TRAIN = Fixtures.causalRows(16, 12, 96, 11);
    private static final Dataset EVAL = Fixtures.causalRows(4, 12, 96, 12);
    private static final CollieConfig CONFIG = CollieConfig.builder().shuffle(false).lr(3e-2).trainMicroBatchSize(2)
            .evalPerNSteps(1).trainEpochs(3).maxSteps(12).workerThreads(1).build();

    @AfterAll
    static void restoreOpThreads() {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }

    /**
     * What one rank saw: its steps, its evaluations, how it ended, its whole model (data parallel alone) and what
     * the lead rank gathered.
     */
    private record Outcome(List<StepStats> stats, List<LossHistory.Eval> evals, boolean stoppedEarly,
                           Map<String, INDArray> own, Map<String, INDArray> whole) {
    }

    /** A run on dp × tp × pp ranks; {@code callbacks} makes each rank's own (given its world rank). */
    private static List<Outcome> run(int dp, int tp, int pp, int zero, IntFunction<Callback[]> callbacks) {
        int world = dp * tp * pp;
        CollieConfig config = CONFIG.toBuilder().trainMicroBatchSize(2 / dp).build();
        boolean whole = world == dp && zero < 3;      // each rank holds the whole model
        return LocalRanks.run(world, Duration.ofSeconds(30), 300, c -> {
            try (c; Parallelism par = Parallelism.builder().dp(dp).tp(tp).pp(pp).zero(zero)
                    .build(c, DecoderCheckpoint.load(TINY_TIED, DataType.DOUBLE))) {
                LossHistory h = new LossHistory();
                Trainer t = par.configure(Trainer.builder()).optimizer(new AdamW(par.optimizerParameters()))
                        .config(config).trainData(TRAIN).evalData(EVAL).localRanks(world).callbacks(h)
                        .callbacks(callbacks.apply(c.rank())).build();
                List<StepStats> stats = t.train();
                return new Outcome(stats, h.evals(), t.stoppedEarly(),
                        whole ? Fixtures.copies(par.model().module().namedParameters(), false) : null,
                        Fixtures.copies(par.gatherFullWeights()));
            }
        });
    }

    /** Top 2 and the best by the evaluation loss, and early stopping after 3 evaluations without a better one. */
    private static Callback[] watching(Path dir, boolean deleteBest) {
        TrackedMetric loss = TrackedMetric.min("loss");
        return new Callback[] {CheckpointCallback.builder(dir).topK(2, loss).build(),
            new LoadBestModelCallback(dir, loss, deleteBest), new EarlyStoppingCallback(loss, 3, 0)};
    }

    /** The step early stopping with patience 3 must end on, from a whole run's evaluations. */
    private static long stopStep(List<LossHistory.Eval> evals) {
        double best = Double.POSITIVE_INFINITY;
        int waited = 0;
        for (LossHistory.Eval e : evals) {
            waited = e.loss() < best ? 0 : waited + 1;
            best = Math.min(best, e.loss());
            if (waited == 3) {
                return e.step();
            }
        }
        throw new AssertionError("the evaluations never stop early: " + evals);
    }

    /** The top-k folders as (epoch, batch) without the value, and the values, of the runs in {@code dir}. */
    private static List<String> topK(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("epoch_")).sorted().toList();
        }
    }

    private static void sameTopK(Path one, Path other) throws IOException {
        List<String> a = topK(one);
        List<String> b = topK(other);
        assertEquals(2, a.size(), a.toString());
        assertEquals(a.size(), b.size(), b.toString());
        for (int i = 0; i < a.size(); i++) {
            String[] x = a.get(i).split("-loss_");
            String[] y = b.get(i).split("-loss_");
            assertEquals(x[0], y[0]);
            assertEquals(Double.parseDouble(x[1]), Double.parseDouble(y[1]), 1e-9, a.get(i) + " vs " + b.get(i));
        }
    }

    /** The largest difference between the model in {@code best}'s one-rank file and {@code weights}. */
    private static double fromBest(Path best, Map<String, INDArray> weights) {
        double d = 0;
        try (SafeTensors st = SafeTensors.open(best.resolve("model.safetensors"))) {
            for (String n : st.names()) {
                assertTrue(weights.containsKey(n), n);
                d = Math.max(d, st.load(n, DataType.DOUBLE).sub(weights.get(n)).amaxNumber().doubleValue());
            }
        }
        return d;
    }

    @Test
    void replicasStopAfterTheSameStepAndLoadTheSameBest(@TempDir Path tmp) throws IOException {
        Outcome one = run(1, 1, 1, 0, r -> watching(tmp.resolve("one"), false)).get(0);
        long stop = stopStep(run(1, 1, 1, 0, r -> new Callback[0]).get(0).evals());
        assertTrue(stop < 12, "stops at " + stop);
        assertEquals(stop, one.stats().size());
        List<Outcome> two = run(2, 1, 1, 0, r -> watching(tmp.resolve("two"), true));
        for (Outcome o : two) {
            assertEquals(stop, o.stats().size());
            assertTrue(o.stoppedEarly());
            assertEquals(0.0, fromBest(tmp.resolve("one/best"), o.own()), 1e-9);
        }
        sameTopK(tmp.resolve("one"), tmp.resolve("two"));
        assertTrue(Files.notExists(tmp.resolve("two/best")), "best is deleted once every replica loaded it");
    }

    @Test
    void underZero3TheBestIsLoadedIntoTheShardsEachReplicaOwns(@TempDir Path tmp) throws IOException {
        Outcome one = run(1, 1, 1, 0, r -> watching(tmp.resolve("one"), false)).get(0);
        List<Outcome> two = run(2, 1, 1, 3, r -> watching(tmp.resolve("zero3"), true));
        for (Outcome o : two) {
            assertEquals(one.stats().size(), o.stats().size());
        }
        sameTopK(tmp.resolve("one"), tmp.resolve("zero3"));
        assertEquals(0.0, fromBest(tmp.resolve("one/best"), two.get(0).whole()), 1e-9);
    }

    @Test
    void aStopRequestedOnOneRankStopsEveryRankAfterThatStep() {
        Callback stopAtThree = new Callback() {
            @Override
            public void onStepEnd(Trainer t, long step) {
                if (step == 3) {
                    t.requestStop();
                }
            }
        };
        List<Outcome> two = run(2, 1, 1, 0, r -> r == 1 ? new Callback[] {stopAtThree} : new Callback[0]);
        for (Outcome o : two) {
            assertEquals(3, o.stats().size());
            assertTrue(o.stoppedEarly());
        }
    }

    @Test
    void topKAndTheBestUnderDpTpPpAreOneRanks(@TempDir Path tmp) throws IOException {
        Outcome one = run(1, 1, 1, 0, r -> watching(tmp.resolve("one"), false)).get(0);
        List<Outcome> all = run(2, 2, 2, 1, r -> watching(tmp.resolve("all"), false));
        for (Outcome o : all) {
            assertEquals(one.stats().size(), o.stats().size());
            assertTrue(o.stoppedEarly());
        }
        sameTopK(tmp.resolve("one"), tmp.resolve("all"));
        try (Stream<Path> s = Files.list(tmp.resolve("all/best"))) {
            List<String> names = s.map(p -> p.getFileName().toString()).toList();
            assertEquals(4, names.stream().filter(n -> n.startsWith("model-part")).count(), names.toString());
            assertEquals(8, names.stream().filter(n -> n.startsWith("optimizer-rank")).count(), names.toString());
        }
        assertEquals(0.0, fromBest(tmp.resolve("one/best"), all.get(0).whole()), 1e-9);
    }
}
