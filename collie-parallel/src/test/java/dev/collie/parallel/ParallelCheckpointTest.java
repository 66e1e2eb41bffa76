package dev.collie.parallel;

import dev.collie.core.CollieException;
import dev.collie.core.data.Dataset;
import dev.collie.core.tensor.Backends;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.optim.AdamW;
import dev.collie.parallel.testing.Fixtures;
import dev.collie.parallel.comm.LocalRanks;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Training checkpoints of a split model: every rank writes its part (dp 2 × tp 2 × pp 2, ZeRO-1: 8 optimizer
 * files, 4 model parts); a run stopped after 3 of 5 steps and resumed gives the uninterrupted run's losses and
 * weights exactly; resuming with another layout is refused with a message naming the counts.
 */
class ParallelCheckpointTest {
    private static final Path TINY_TIED = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama-tied");

    @AfterAll
    static void restoreOpThreads() {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }

    private static Dataset rows() {
        return Fixtures.causalRows(40, 12, 96, 11);
    }

    private record Outcome(List<Double> losses, Map<String, INDArray> weights) {
    }

    /** {@code steps} steps on every rank of dp × tp × pp, resuming from {@code resume} and saving to {@code save} when given. */
    private static Outcome run(int dp, int tp, int pp, int zero, long steps, Path resume, Path save) throws Exception {
        int world = dp * tp * pp;
        return LocalRanks.run(world, Duration.ofSeconds(30), 120, c -> {
            try (c; Parallelism par = Parallelism.builder().dp(dp).tp(tp).pp(pp).zero(zero)
                    .build(c, DecoderCheckpoint.load(TINY_TIED, DataType.DOUBLE))) {
                CollieConfig config = CollieConfig.builder().shuffle(false).lr(1e-2).trainMicroBatchSize(2)
                        .gradientAccumulationSteps(2).maxSteps(steps).workerThreads(1).build();
                Trainer t = par.configure(Trainer.builder()).optimizer(new AdamW(par.optimizerParameters()))
                        .config(config).trainData(rows()).localRanks(world).build();
                if (resume != null) {
                    t.resume(resume);
                }
                List<Double> losses = t.train().stream().map(StepStats::loss).toList();
                if (save != null) {
                    t.save(save);
                }
                return new Outcome(losses, Fixtures.copies(par.gatherFullWeights()));
            }
        }).get(0);
    }

    @Test
    void stoppedAndResumedEqualsUninterrupted(@TempDir Path tmp) throws Exception {
        Outcome straight = run(2, 2, 2, 1, 5, null, null);
        Path ckpt = tmp.resolve("step3");
        Outcome first = run(2, 2, 2, 1, 3, null, ckpt);
        try (var files = Files.list(ckpt)) {
            List<String> names = files.map(p -> p.getFileName().toString()).sorted().toList();
            assertEquals(8, names.stream().filter(n -> n.startsWith("optimizer-rank")).count(), names.toString());
            assertEquals(4, names.stream().filter(n -> n.startsWith("model-part")).count(), names.toString());
            assertTrue(names.contains("trainer.json"), names.toString());
        }
        Outcome rest = run(2, 2, 2, 1, 5, ckpt, null);
        List<Double> resumed = new ArrayList<>(first.losses());
        resumed.addAll(rest.losses());
        assertEquals(straight.losses(), resumed, "losses of the resumed run");
        for (Map.Entry<String, INDArray> e : straight.weights().entrySet()) {
            assertEquals(0.0, e.getValue().sub(rest.weights().get(e.getKey())).amaxNumber().doubleValue(), 0.0,
                    e.getKey());
        }
    }

    @Test
    void resumingWithAnotherLayoutIsRefused(@TempDir Path tmp) throws Exception {
        Path ckpt = tmp.resolve("step1");
        run(1, 2, 2, 0, 1, null, ckpt);
        Exception e = Assertions.assertThrows(CollieException.class,
                () -> run(1, 2, 1, 0, 2, ckpt, null));
        assertTrue(e.getMessage().contains("saved in 4 part(s)") && e.getMessage().contains("this run has 2"),
                e.getMessage());
    }
}
