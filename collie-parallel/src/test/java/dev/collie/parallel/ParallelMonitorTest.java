package dev.collie.parallel;

import dev.collie.core.tensor.Backends;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.core.train.monitor.Monitor;
import dev.collie.core.train.monitor.MonitorConfig;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.optim.AdamW;
import dev.collie.parallel.comm.LocalRanks;
import dev.collie.parallel.testing.Fixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The monitor under dp 2 × tp 2 × pp 2: only the lead rank writes, TGS divides a replica's tokens by its tp · pp
 * ranks, and {@code comm_bytes} is what {@link Parallelism#bytesSent()} grew by during the step.
 */
class ParallelMonitorTest {
    private static final Path TINY_TIED = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama-tied");

    @AfterAll
    static void restoreOpThreads() {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }

    private record Lead(List<StepStats> stats, List<Long> sentPerStep) {
    }

    @Test
    void theLeadRankLogsTgsPerDeviceAndTheBytesItsGroupsSent(@TempDir Path dir) throws Exception {
        int dp = 2;
        int tp = 2;
        int pp = 2;
        List<Lead> ranks = LocalRanks.run(dp * tp * pp, Duration.ofSeconds(30), 120, c -> {
            try (c; Parallelism par = Parallelism.builder().dp(dp).tp(tp).pp(pp)
                    .build(c, DecoderCheckpoint.load(TINY_TIED, DataType.DOUBLE))) {
                List<Long> sent = new ArrayList<>();
                long[] before = new long[1];
                Callback count = new Callback() {
                    @Override
                    public void onBatchBegin(Trainer t, long step) {
                        before[0] = par.bytesSent();
                    }

                    @Override
                    public void onBatchEnd(Trainer t, StepStats s) {
                        sent.add(par.bytesSent() - before[0]);
                    }
                };
                Monitor monitor = new Monitor(new MonitorConfig(dir, List.of("csv", "tensorboard"), 1, false),
                        par::bytesSent);
                CollieConfig config = CollieConfig.builder().shuffle(false).lr(1e-2).trainMicroBatchSize(2)
                        .gradientAccumulationSteps(2).maxSteps(2).workerThreads(1).build();
                Trainer t = par.configure(Trainer.builder()).optimizer(new AdamW(par.optimizerParameters()))
                        .config(config).trainData(Fixtures.causalRows(40, 12, 96, 11)).localRanks(dp * tp * pp)
                        .callbacks(count, monitor).build();
                return new Lead(t.train(), sent);
            }
        });
        try (var files = Files.list(dir)) {
            assertEquals(2, files.count(), "metrics.csv and one event file: the lead rank's");
        }
        Lead lead = ranks.get(0);
        List<String> rows = Files.readAllLines(dir.resolve("metrics.csv"));
        assertEquals(3, rows.size(), rows.toString());
        List<String> header = List.of(rows.get(0).split(","));
        for (int k = 0; k < 2; k++) {
            StepStats s = lead.stats().get(k);
            String[] f = rows.get(k + 1).split(",");
            // the step's tokens count both replicas; TGS is one replica's over its tp · pp devices
            double replicaTokens = s.tokens() / (double) dp;
            assertEquals(replicaTokens / (tp * pp * s.seconds()), s.tgs(), 1e-9 * s.tgs());
            assertEquals(s.tgs(), Double.parseDouble(f[header.indexOf("tgs")]));
            long bytes = Long.parseLong(f[header.indexOf("comm_bytes")]);
            assertTrue(bytes > 0, "step " + (k + 1) + " sent " + bytes);
            assertEquals(lead.sentPerStep().get(k), bytes, "step " + (k + 1));
        }
    }
}
