package dev.collie.core.train.monitor;

import dev.collie.core.train.StepStats;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What the monitor costs a step, each sink alone and all three with the dashboard's figures, fed synthetic steps:
 * the first step (class loading, opening the files), then the median, mean and 99th percentile of 5000 steps after
 * 1000 of warm-up, and an evaluation. Runs with {@code -Dcollie.bench=true -Dtest=MonitorBench};
 * {@code -Dmonitor.dir=DIR} writes under DIR instead of a temporary directory.
 */
@EnabledIfSystemProperty(named = "collie.bench", matches = "true")
class MonitorBench {
    @Test
    void costOfAStep(@TempDir Path tmp) {
        Path dir = System.getProperty("monitor.dir") != null ? Path.of(System.getProperty("monitor.dir")) : tmp;
        for (List<String> sinks : List.of(List.of("csv"), List.of("jsonl"), List.of("tensorboard"),
                MonitorSink.KNOWN)) {
            run(dir.resolve(String.join("-", sinks)), sinks, sinks.size() > 1);
        }
    }

    private static void run(Path dir, List<String> sinks, boolean dashboard) {
        AtomicLong sent = new AtomicLong();
        Monitor m = new Monitor(new MonitorConfig(dir, sinks, 1, dashboard), sent::get);
        m.onTrainBegin(null);
        int warm = 1000;
        int timed = 5000;
        long[] ns = new long[warm + timed];
        for (int k = 1; k <= ns.length; k++) {
            StepStats s = new StepStats(k, 1_000_000, 0, 2.0 + 1.0 / k, 1e-4, 1.5, 4096, 0.25, 16384, 16384,
                    700L << 20, 700L << 20, false);
            long t0 = System.nanoTime();
            m.onBatchBegin(null, k - 1);
            sent.addAndGet(123456);
            m.onBatchEnd(null, s);
            ns[k - 1] = System.nanoTime() - t0;
        }
        long e0 = System.nanoTime();
        m.onEvaluateEnd(null, Map.of("loss", 2.5, "ppl", Math.exp(2.5)));
        long eval = System.nanoTime() - e0;
        m.onTrainExit(null);
        long[] steady = Arrays.copyOfRange(ns, warm, ns.length);
        Arrays.sort(steady);
        System.out.println(String.format(Locale.ROOT, "monitor %s: first step %.3f ms; steps %d-%d: median %.1f µs,"
                        + " mean %.1f µs, p99 %.1f µs; an evaluation %.1f µs", String.join(",", sinks), ns[0] / 1e6,
                warm + 1, ns.length, steady[timed / 2] / 1e3, Arrays.stream(steady).average().orElse(0) / 1e3,
                steady[timed * 99 / 100] / 1e3, eval / 1e3));
    }
}
