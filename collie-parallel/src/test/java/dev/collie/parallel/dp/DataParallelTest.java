package dev.collie.parallel.dp;

import dev.collie.core.CollieException;
import dev.collie.core.data.Dataset;
import dev.collie.core.data.JsonlDataset;
import dev.collie.core.data.Sample;
import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.optim.Sgd;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.GradientRoute;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.parallel.comm.LocalCommunicators;
import dev.collie.parallel.comm.LocalRanks;
import dev.collie.parallel.testing.OneOpThread;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Data parallel on the tiny LLaMA fixture: parity with one rank, accumulation, bytes on the wire, failures. */
@Timeout(value = 10, unit = TimeUnit.SECONDS)
@ExtendWith(OneOpThread.class)
@NumericalParity
class DataParallelTest {
    private static final Path TINY = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama");
    private static final Dataset ROWS = JsonlDataset.load(TINY.resolve("adamw_rows.jsonl"), null, 0, 96);
    private static final Duration TIMEOUT = Duration.ofSeconds(2);

    private static CollieConfig config(int steps, double lr, int micro, int accum) {
        return CollieConfig.builder().trainMicroBatchSize(micro).gradientAccumulationSteps(accum).shuffle(false).seed(1)
                .lr(lr).maxSteps(steps).build();
    }

    private static double maxAbsDiff(INDArray a, INDArray b) {
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }

    /** What one data-parallel rank ended with: its replica, its steps, its bytes sent per step, the bucketed bytes. */
    private record Replica(DecoderForCausalLM model, List<StepStats> stats, List<Long> bytesSent, long gradientBytes) { }

    /** The bytes {@code comm} sent during each step. */
    private static final class BytesPerStep implements Callback {
        private final Communicator comm;
        private final List<Long> perStep = new ArrayList<>();
        private long before;

        BytesPerStep(Communicator comm) {
            this.comm = comm;
        }

        @Override public void onBatchBegin(Trainer t, long step) { before = comm.bytesSent(); }
        @Override public void onBatchEnd(Trainer t, StepStats st) { perStep.add(comm.bytesSent() - before); }
    }

    /** Two data-parallel ranks as threads, each through the Trainer with a {@link DataParallel} over {@code data}. */
    private static List<Replica> twoRanks(Dataset data, CollieConfig config, long bucketBytes,
                                          Function<Map<String, Parameter>, Optimizer> optimizer) {
        return LocalRanks.run(2, TIMEOUT, 9, c -> {
            DecoderForCausalLM m = DecoderCheckpoint.load(TINY, DataType.FLOAT);
            Optimizer o = optimizer.apply(m.namedParameters());
            try (DataParallel dp = new DataParallel(o.parameters(), c, bucketBytes)) {
                BytesPerStep bytes = new BytesPerStep(c);
                List<StepStats> stats = Trainer.builder().model(m).optimizer(o).config(config).trainData(data)
                        .distributed(dp).localRanks(2).callbacks(bytes).build().train();
                return new Replica(m, stats, bytes.perStep, dp.gradientBytes());
            }
        });
    }

    private static void compare(int steps, double lr, int micro, int accum, long bucketBytes,
                                Function<Map<String, Parameter>, Optimizer> optimizer, double weightTol) {
        DecoderForCausalLM ref = DecoderCheckpoint.load(TINY, DataType.FLOAT);
        List<StepStats> refStats = Trainer.builder().model(ref).optimizer(optimizer.apply(ref.namedParameters()))
                .config(config(steps, lr, micro * 2, accum)).trainData(ROWS).build().train();
        List<Replica> r = twoRanks(ROWS, config(steps, lr, micro, accum), bucketBytes, optimizer);
        double worstLoss = 0;
        for (int s = 0; s < steps; s++) {
            worstLoss = Math.max(worstLoss, Math.abs(refStats.get(s).loss() - r.get(0).stats().get(s).loss()));
        }
        Agreement.within("losses vs one rank", worstLoss, 1e-5);
        Map<String, Parameter> p0 = r.get(0).model().namedParameters();
        Map<String, Parameter> p1 = r.get(1).model().namedParameters();
        double worst = 0;
        for (Map.Entry<String, Parameter> e : ref.namedParameters().entrySet()) {
            worst = Math.max(worst, maxAbsDiff(e.getValue().data(), p0.get(e.getKey()).data()));
            assertEquals(0.0, maxAbsDiff(p0.get(e.getKey()).data(), p1.get(e.getKey()).data()),
                    e.getKey() + ": replicas diverged");
        }
        Agreement.within("weights vs one rank's", worst, weightTol);
    }

    @Test
    void twoRanksWithSgdEqualOneRankWithTheirRows() {
        compare(3, 0.5, 1, 1, DataParallel.DEFAULT_BUCKET_BYTES, Sgd::new, 1e-6);
    }

    @Test
    void twoRanksWithAdamWEqualOneRankWithTheirRows() {
        compare(3, 1e-2, 1, 1, DataParallel.DEFAULT_BUCKET_BYTES,
                ZeroHarnessTest.ADAMW, 1e-5);
    }

    @Test
    void twoRanksAccumulatingTwoMicroBatchesEqualOneRankWithFourRows() {
        compare(1, 0.5, 1, 2, DataParallel.DEFAULT_BUCKET_BYTES, Sgd::new, 1e-6);
    }

    @Test
    void smallBucketsGiveTheSameStepsAndSendNearTheRingOptimum() {
        compare(2, 0.5, 1, 1, 16 * 1024, Sgd::new, 1e-6);
        for (long bucket : new long[] {DataParallel.DEFAULT_BUCKET_BYTES, 16 * 1024}) {
            List<Replica> r = twoRanks(ROWS, config(2, 0.5, 1, 1), bucket, Sgd::new);
            // a ring all-reduce sends 2(n-1)/n of the gradient bytes; the step's loss and token count add 32 bytes
            double optimum = 2.0 * (2 - 1) / 2 * r.get(0).gradientBytes();
            for (Replica rank : r) {
                for (long b : rank.bytesSent()) {
                    double ratio = b / optimum;
                    System.out.printf("bucket %d B: %d gradient bytes, %d sent per rank per step, ratio %.4f%n",
                            bucket, rank.gradientBytes(), b, ratio);
                    assertTrue(ratio >= 1.0 - 1e-9 && ratio <= 1.05, "ratio " + ratio);
                }
            }
        }
    }

    @Test
    void aFailingRankMakesTheOtherFailPromptlyWithAClearMessage() {
        Dataset broken = new Dataset() {
            @Override public int size() { return ROWS.size(); }
            @Override public Sample get(int i) {
                if (i == 3) {
                    throw new IllegalStateException("row 3 is unreadable");
                }
                return ROWS.get(i);
            }
        };
        long t0 = System.nanoTime();
        List<Throwable> failures;
        List<Communicator> comms = LocalCommunicators.create(2, TIMEOUT);
        try {
            failures = LocalRanks.failures(comms, 9, c -> {
                try {
                    return twoRanksBody(c, broken);
                } catch (RuntimeException e) {
                    c.close();      // as LocalRanks.run does: the peer fails at once
                    throw e;
                }
            });
        } finally {
            comms.forEach(Communicator::close);
        }
        double sec = (System.nanoTime() - t0) / 1e9;
        System.out.println("failure after " + sec + " s: " + failures);
        assertTrue(failures.get(1).getMessage().contains("row 3 is unreadable"), String.valueOf(failures.get(1)));
        assertTrue(failures.get(0) != null && failures.get(0).getMessage().contains("data parallel rank 0"),
                String.valueOf(failures.get(0)));
        assertTrue(sec < 8, "took " + sec + " s");
    }

    private static List<StepStats> twoRanksBody(Communicator c, Dataset data) {
        DecoderForCausalLM m = DecoderCheckpoint.load(TINY, DataType.FLOAT);
        Optimizer o = new Sgd(m.namedParameters());
        try (DataParallel dp = new DataParallel(o.parameters(), c)) {
            return Trainer.builder().model(m).optimizer(o).config(config(3, 0.5, 1, 1)).trainData(data).distributed(dp)
                    .localRanks(2).build().train();
        }
    }

    // ---- DataParallel alone, on synthetic parameters ----

    private static Map<String, Parameter> params(long... sizes) {
        Map<String, Parameter> m = new LinkedHashMap<>();
        for (int i = 0; i < sizes.length; i++) {
            m.put("w" + i, new Parameter(Nd4j.zeros(DataType.FLOAT, sizes[i])));
        }
        return m;
    }

    private static void deliver(Map<String, Parameter> ps, float value, String... skip) {
        Tape tape = Tape.forTraining(1, 1);
        ps.values().forEach(tape::use);
        ps.forEach((n, p) -> {
            if (!List.of(skip).contains(n)) {
                p.accumulateGrad(tape, Nd4j.valueArrayOf(p.shape(), value, DataType.FLOAT));
            }
        });
    }

    @Test
    void gradientsAreAveragedInPlaceAcrossBucketsAndMissingOnesAreNamed() throws Exception {
        List<Communicator> comms = LocalCommunicators.create(2, TIMEOUT);
        try {
            List<CompletableFuture<Void>> fs = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                fs.add(CompletableFuture.runAsync(() -> {
                    Map<String, Parameter> ps = params(10, 300, 7, 2000);
                    try (DataParallel dp = new DataParallel(ps, comms.get(rank), 4096)) {
                        assertEquals(2, dp.bucketCount());   // [w3] alone (8000 B > 4096), then [w2, w1, w0]
                        GradientRoute.compose(dp, new Sgd(ps));
                        deliver(ps, rank == 0 ? 1f : 3f);
                        dp.finishReduction();
                        ps.values().forEach(p -> assertEquals(2.0, p.grad().meanNumber().doubleValue(), 0.0));
                        ps.values().forEach(Parameter::zeroGrad);
                        deliver(ps, 1f, "w2");
                        CollieException e = assertThrows(CollieException.class, dp::finishReduction);
                        assertTrue(e.getMessage().contains("[w2]"), e.getMessage());
                    }
                }));
            }
            for (CompletableFuture<Void> f : fs) {
                f.get(8, TimeUnit.SECONDS);
            }
        } finally {
            comms.forEach(Communicator::close);
        }
    }

    @Test
    void ranksWithDifferentParametersAreRefused() throws Exception {
        List<Communicator> comms = LocalCommunicators.create(2, TIMEOUT);
        try {
            List<CompletableFuture<String>> fs = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                fs.add(CompletableFuture.supplyAsync(() -> assertThrows(CollieException.class,
                        () -> new DataParallel(rank == 0 ? params(10, 20) : params(10, 21), comms.get(rank))).getMessage()));
            }
            for (CompletableFuture<String> f : fs) {
                String m = f.get(8, TimeUnit.SECONDS);
                assertTrue(m.contains("differ") && m.contains("same model replica"), m);
            }
        } finally {
            comms.forEach(Communicator::close);
        }
    }

    @Test
    void aSilentPeerMakesFinishFailWithinTheTimeout() throws Exception {
        List<Communicator> comms = LocalCommunicators.create(2, TIMEOUT);
        try {
            Map<String, Parameter> p1 = params(5);
            // rank 1 joins the construction check, then never delivers a gradient (and never closes)
            CompletableFuture<DataParallel> other = CompletableFuture.supplyAsync(() -> new DataParallel(p1, comms.get(1)));
            Map<String, Parameter> p0 = params(5);
            try (DataParallel dp = new DataParallel(p0, comms.get(0))) {
                other.get(8, TimeUnit.SECONDS).close();
                GradientRoute.compose(dp, new Sgd(p0));
                deliver(p0, 1f);
                long t0 = System.nanoTime();
                CollieException e = assertThrows(CollieException.class, dp::finishReduction);
                double sec = (System.nanoTime() - t0) / 1e9;
                assertTrue(e.getMessage().contains("data parallel rank 0") && e.getMessage().contains("rank 1"),
                        e.getMessage());
                assertTrue(sec < 2.0 + 1.5, "took " + sec + " s");
            }
        } finally {
            comms.forEach(Communicator::close);
        }
    }
}
