package dev.collie.parallel.dp;

import dev.collie.core.data.Dataset;
import dev.collie.core.data.JsonlDataset;
import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.optim.Sgd;
import dev.collie.core.tensor.Backends;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.Distributed;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.optim.Lomo;
import dev.collie.optim.SophiaG;
import dev.collie.parallel.comm.LocalCommunicators;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Trainer with a {@link DataParallel} gradient sync: two replicas as threads equal one rank with both rows. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
@NumericalParity
class TrainerDataParallelTest {
    private static final Path TINY = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama");
    private static final Dataset ROWS = JsonlDataset.load(TINY.resolve("adamw_rows.jsonl"), null, 0, 96);
    private static final CollieConfig BASE = CollieConfig.builder().shuffle(false).lr(1e-2).build();
    private static final Function<Map<String, Parameter>, Optimizer> ADAMW = ZeroHarnessTest.ADAMW;

    @AfterAll
    static void restoreOpThreads() {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }

    private record Run(List<StepStats> stats, DecoderForCausalLM model, long stateBytes) {
    }

    private static Run single(Function<Map<String, Parameter>, Optimizer> opt) {
        DecoderForCausalLM model = DecoderCheckpoint.load(TINY, DataType.FLOAT);
        List<StepStats> stats = Trainer.builder().model(model).optimizer(opt.apply(model.namedParameters()))
                .config(BASE.toBuilder().trainMicroBatchSize(2).build()).trainData(ROWS).build().train();
        return new Run(stats, model, 0);
    }

    /** Two ranks as threads, micro-batch 1 each (the global batch is the same 2 rows). */
    private static List<Run> twoRanks(Function<Map<String, Parameter>, Optimizer> opt) throws Exception {
        return twoRanks(opt, false);
    }

    private static List<Run> twoRanks(Function<Map<String, Parameter>, Optimizer> opt, boolean zero1) throws Exception {
        return twoRanks(opt, zero1, 3, null, null);
    }

    /** {@code steps} steps; then save a checkpoint into {@code saveTo}, or first resume from {@code resumeFrom}. */
    private static List<Run> twoRanks(Function<Map<String, Parameter>, Optimizer> opt, boolean zero1, int steps,
                                      Path saveTo, Path resumeFrom) throws Exception {
        List<Communicator> comms = LocalCommunicators.create(2, Duration.ofSeconds(10));
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<Run>> futures = new ArrayList<>();
            for (Communicator comm : comms) {
                futures.add(pool.submit(() -> {
                    DecoderForCausalLM model = DecoderCheckpoint.load(TINY, DataType.FLOAT);
                    Zero1 zero = zero1 ? new Zero1(model.namedParameters(), comm) : null;
                    Optimizer o = opt.apply(zero1 ? zero.ownedParameters() : model.namedParameters());
                    Distributed sync = zero1 ? zero : new DataParallel(o.parameters(), comm);
                    try {
                        Trainer t = Trainer.builder().model(model).optimizer(o)
                                .config(BASE.toBuilder().trainMicroBatchSize(1).maxSteps(steps).build()).trainData(ROWS)
                                .distributed(sync).localRanks(2).build();
                        if (resumeFrom != null) {
                            t.resume(resumeFrom);
                        }
                        List<StepStats> stats = t.train();
                        if (saveTo != null) {
                            t.save(saveTo);
                        }
                        return new Run(stats, model, o.stateBytes());
                    } finally {
                        ((AutoCloseable) sync).close();
                        comm.close();
                    }
                }));
            }
            List<Run> runs = new ArrayList<>();
            for (Future<Run> f : futures) {
                runs.add(f.get(25, TimeUnit.SECONDS));
            }
            return runs;
        } finally {
            pool.shutdownNow();
        }
    }

    private static double maxAbsDiff(DecoderForCausalLM a, DecoderForCausalLM b) {
        double d = 0;
        for (var e : a.namedParameters().entrySet()) {
            d = Math.max(d, e.getValue().data().sub(b.namedParameters().get(e.getKey()).data()).amaxNumber().doubleValue());
        }
        return d;
    }

    private static List<Run> sameAsOneRank(Function<Map<String, Parameter>, Optimizer> opt, double tolerance)
            throws Exception {
        return sameAsOneRank(opt, tolerance, false);
    }

    private static List<Run> sameAsOneRank(Function<Map<String, Parameter>, Optimizer> opt, double tolerance,
                                           boolean zero1) throws Exception {
        Run one = single(opt);
        List<Run> two = twoRanks(opt, zero1);
        assertEquals(3, two.get(0).stats().size());
        double worstLoss = 0;
        for (int s = 0; s < 3; s++) {
            worstLoss = Math.max(worstLoss, Math.abs(one.stats().get(s).loss() - two.get(0).stats().get(s).loss()));
            assertEquals(two.get(0).stats().get(s).loss(), two.get(1).stats().get(s).loss(), 0.0, "ranks disagree");
        }
        Agreement.within("losses vs one rank", worstLoss, 1e-5);
        assertEquals(0.0, maxAbsDiff(two.get(0).model(), two.get(1).model()), "replicas diverged");
        Agreement.within("dp=2 weights vs one rank's", maxAbsDiff(one.model(), two.get(0).model()), tolerance);
        return two;
    }

    @Test
    void zero1ShardsAdamWStateAndEqualsOneRank() throws Exception {
        List<Run> two = sameAsOneRank(ADAMW, 1e-5, true);
        long full = 8L * 27808;                          // AdamW: two fp32 tensors, 8 bytes per parameter
        long total = two.get(0).stateBytes() + two.get(1).stateBytes();
        assertEquals(full, total);
        for (Run r : two) {
            assertTrue(r.stateBytes() <= 0.6 * full, "rank state " + r.stateBytes() + " of " + full);
        }
    }

    @Test
    void twoReplicasWithSgdEqualOneRank() throws Exception {
        sameAsOneRank(Sgd::new, 1e-6);
    }

    @Test
    void twoReplicasWithAdamWEqualOneRank() throws Exception {
        sameAsOneRank(ADAMW, 1e-5);
    }

    @Test
    void zero1CheckpointHoldsEveryShardAndResumesExactly(@TempDir Path tmp) throws Exception {
        Function<Map<String, Parameter>, Optimizer> adamw = ADAMW;
        List<Run> straight = twoRanks(adamw, true, 3, null, null);
        twoRanks(adamw, true, 2, tmp.resolve("ckpt"), null);
        assertTrue(Files.isRegularFile(tmp.resolve("ckpt/optimizer-rank0-of-2.safetensors")));
        assertTrue(Files.isRegularFile(tmp.resolve("ckpt/optimizer-rank1-of-2.safetensors")));
        List<Run> resumed = twoRanks(adamw, true, 3, null, tmp.resolve("ckpt"));
        assertEquals(1, resumed.get(0).stats().size());
        assertEquals(straight.get(0).stats().get(2).loss(), resumed.get(0).stats().get(0).loss(), 0.0);
        assertEquals(0.0, maxAbsDiff(straight.get(0).model(), resumed.get(0).model()), "resumed run differs");
    }

    @Test
    void sophiaHessianRefreshesStayInStepAcrossReplicas() throws Exception {
        List<Run> two = twoRanks(p -> new SophiaG(p, 0.965, 0.99, 0.04, 0.1, 5120, 1));
        assertEquals(0.0, maxAbsDiff(two.get(0).model(), two.get(1).model()), "replicas diverged");
    }

    @Test
    void lomoWithTwoPassClippingUnderDataParallelEqualsOneRank() throws Exception {
        // LOMO = SGD in exact arithmetic; each gradient is averaged over the replicas inside its hook,
        // and the clipping norm of pass 0 is the averaged gradient's
        sameAsOneRank(p -> new Lomo(p, 0.5, 0.01, 0.1, null), 1e-6);
    }

    @Test
    void adaLomoUnderDataParallelEqualsOneRank() throws Exception {
        sameAsOneRank(ZeroHarnessTest.ADALOMO, 1e-5);
    }
}
