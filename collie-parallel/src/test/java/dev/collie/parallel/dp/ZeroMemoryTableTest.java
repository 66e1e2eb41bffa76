package dev.collie.parallel.dp;

import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.tensor.Backends;
import dev.collie.optim.AdamW;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The table ZeRO is about, measured on the tiny LLaMA with AdamW after two steps: per-rank bytes of
 * parameters, gradients, optimizer state and communication buffers for ZeRO-0 (plain data parallel), 1, 2
 * and 3 against one unsharded rank, and the bytes each rank sends per step.
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class ZeroMemoryTableTest {
    private static final Function<Map<String, Parameter>, Optimizer> ADAMW = p -> new AdamW(p, 0.9, 0.999, 1e-8, 0.01);

    @AfterAll
    static void restoreOpThreads() {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }

    @Test
    void perRankBytesShrinkStageByStage() throws Exception {
        for (int n : new int[] {2, 4}) {
            ZeroHarnessTest.Setup s = new ZeroHarnessTest.Setup(n, 2, 1, 4096, DataType.FLOAT, false, 1e-2);
            ZeroHarnessTest.Run one = ZeroHarnessTest.single(s, ADAMW);
            RankMemory full = one.memory().get(0);
            long fullModelState = full.parameterBytes() + full.gradientBytes() + one.optimizerBytes()[0];
            System.out.printf("%nTiny LLaMA (hidden 32, 2 layers, vocab 64, untied; %d fp32 parameters), AdamW, dp=%d,"
                    + " 4 KB buckets. Per rank, max over ranks (bytes):%n", full.parameterBytes() / 4, n);
            System.out.printf("%-10s %10s %10s %10s %10s %12s %10s %14s%n", "stage", "params", "grads", "optimizer",
                    "p+g+os", "% of 1 rank", "buffers", "sent/step");
            System.out.printf("%-10s %10d %10d %10d %10d %11.1f%% %10d %14s%n", "unsharded", full.parameterBytes(),
                    full.gradientBytes(), one.optimizerBytes()[0], fullModelState, 100.0, 0, "-");
            long previous = Long.MAX_VALUE;
            for (ZeroHarnessTest.Stage stage : ZeroHarnessTest.Stage.values()) {
                ZeroHarnessTest.Run run = ZeroHarnessTest.ranks(s, stage, ADAMW);
                long p = 0;
                long g = 0;
                long os = 0;
                long total = 0;
                long buffers = 0;
                long sent = 0;
                for (int r = 0; r < n; r++) {
                    RankMemory m = run.memory().get(r);
                    p = Math.max(p, m.parameterBytes());
                    g = Math.max(g, m.gradientBytes());
                    os = Math.max(os, run.optimizerBytes()[r]);
                    total = Math.max(total, m.parameterBytes() + m.gradientBytes() + run.optimizerBytes()[r]);
                    buffers = Math.max(buffers, m.bufferBytes());
                    sent = Math.max(sent, run.bytesPerStep()[r]);
                }
                System.out.printf("%-10s %10d %10d %10d %10d %11.1f%% %10d %14d%n", stage, p, g, os, total,
                        100.0 * total / fullModelState, buffers, sent);
                assertTrue(total < previous, stage + " should hold less than the stage before");
                previous = total;
            }
            // one bucket for the whole tiny model: ZeRO-2/3 reduce-scatter it instead of all-reducing
            ZeroHarnessTest.Setup oneBucket = new ZeroHarnessTest.Setup(n, 2, 1, DataParallel.DEFAULT_BUCKET_BYTES,
                    DataType.FLOAT, false, 1e-2);
            for (ZeroHarnessTest.Stage stage : new ZeroHarnessTest.Stage[] {ZeroHarnessTest.Stage.ZERO2,
                    ZeroHarnessTest.Stage.ZERO3}) {
                ZeroHarnessTest.Run run = ZeroHarnessTest.ranks(oneBucket, stage, ADAMW);
                long sent = 0;
                long buffers = 0;
                for (int r = 0; r < n; r++) {
                    sent = Math.max(sent, run.bytesPerStep()[r]);
                    buffers = Math.max(buffers, run.memory().get(r).bufferBytes());
                }
                System.out.printf("%-10s %10s %10s %10s %10s %12s %10d %14d%n", stage + "/1b", "", "", "", "", "",
                        buffers, sent);
            }
            System.out.printf("(ZeRO-3 also holds one layer's gathered parameters at a time during forward and"
                    + " backward; sent/step includes the loss and token averages, 16-32 bytes;"
                    + " /1b: one 25 MB bucket, reduce-scattered)%n");
        }
    }
}
