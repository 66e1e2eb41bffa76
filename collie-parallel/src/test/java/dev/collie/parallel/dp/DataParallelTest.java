package dev.collie.parallel.dp;

import dev.collie.core.CollieException;
import dev.collie.core.data.Batch;
import dev.collie.core.data.Collator;
import dev.collie.core.data.DataLoader;
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
import dev.collie.core.train.GradientRoute;
import dev.collie.core.train.StepRunner;
import dev.collie.models.llama.LlamaCheckpoint;
import dev.collie.models.llama.LlamaForCausalLM;
import dev.collie.parallel.comm.LocalCommunicators;
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
import java.util.Iterator;
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

    private static DataLoader loader(Dataset data, int micro, int accum, int n, int rank) {
        return DataLoader.builder(data, new Collator(0, false)).microBatchSize(micro).gradAccum(accum)
                .numReplicas(n).rank(rank).shuffle(false).seed(1).build();
    }

    /** One rank, no DataParallel: the reference. */
    private static List<Double> single(LlamaForCausalLM model, Optimizer opt, DataLoader loader, int steps, double lr) {
        List<Double> losses = new ArrayList<>();
        try (StepRunner runner = new StepRunner(model, 1)) {
            Iterator<List<Batch>> it = loader.steps(0, steps);
            for (int s = 0; s < steps; s++) {
                losses.add(runner.forwardBackward(it.next()));
                opt.step(lr);
            }
        }
        return losses;
    }

    private static double maxAbsDiff(INDArray a, INDArray b) {
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }

    private static void compare(int steps, double lr, int micro, int accum, long bucketBytes,
                                Function<Map<String, Parameter>, Optimizer> optimizer, double weightTol) {
        LlamaForCausalLM ref = LlamaCheckpoint.load(TINY, DataType.FLOAT);
        List<Double> refLoss = single(ref, optimizer.apply(ref.namedParameters()),
                loader(ROWS, micro * 2, accum, 1, 0), steps, lr);
        LocalDataParallel.Result r = LocalDataParallel.train(2, steps, lr, TIMEOUT, bucketBytes, (rank, n) -> {
            LlamaForCausalLM m = LlamaCheckpoint.load(TINY, DataType.FLOAT);
            return new LocalDataParallel.Replica(m, optimizer.apply(m.namedParameters()), loader(ROWS, micro, accum, n, rank));
        });
        double worstLoss = 0;
        for (int s = 0; s < steps; s++) {
            worstLoss = Math.max(worstLoss, Math.abs(refLoss.get(s) - r.losses().get(s)));
        }
        Agreement.within("losses vs one rank", worstLoss, 1e-5);
        Map<String, Parameter> p0 = r.replicas().get(0).optimizer().parameters();
        Map<String, Parameter> p1 = r.replicas().get(1).optimizer().parameters();
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
            LocalDataParallel.Result r = LocalDataParallel.train(2, 2, 0.5, TIMEOUT, bucket, (rank, n) -> {
                LlamaForCausalLM m = LlamaCheckpoint.load(TINY, DataType.FLOAT);
                return new LocalDataParallel.Replica(m, new Sgd(m.namedParameters()), loader(ROWS, 1, 1, n, rank));
            });
            double optimum = 2.0 * (2 - 1) / 2 * r.gradientBytes();
            for (long[] rank : r.bytesSent()) {
                for (long b : rank) {
                    double ratio = b / optimum;
                    System.out.printf("bucket %d B: %d gradient bytes, %d sent per rank per step, ratio %.4f%n",
                            bucket, r.gradientBytes(), b, ratio);
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
        CollieException e = assertThrows(CollieException.class, () -> LocalDataParallel.train(2, 3, 0.5, TIMEOUT,
                DataParallel.DEFAULT_BUCKET_BYTES, (rank, n) -> {
                    LlamaForCausalLM m = LlamaCheckpoint.load(TINY, DataType.FLOAT);
                    return new LocalDataParallel.Replica(m, new Sgd(m.namedParameters()), loader(broken, 1, 1, n, rank));
                }));
        double sec = (System.nanoTime() - t0) / 1e9;
        String all = e.getMessage() + " | " + (e.getSuppressed().length > 0 ? e.getSuppressed()[0].getMessage() : "");
        System.out.println("failure after " + sec + " s: " + all);
        assertTrue(all.contains("rank 1") && all.contains("row 3 is unreadable"), all);
        assertTrue(all.contains("rank 0 failed") && all.contains("data parallel rank 0"), all);
        assertTrue(sec < 8, "took " + sec + " s");
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
