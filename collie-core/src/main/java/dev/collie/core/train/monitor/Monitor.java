package dev.collie.core.train.monitor;

import dev.collie.core.train.Callback;
import dev.collie.core.train.Memory;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * CoLLiE's monitors as one {@link Callback}: on the lead rank, every {@code every} steps (and the last), the
 * step's figures go to each {@link MonitorSink} as group {@code train}:
 * <ul>
 *   <li>{@code loss}, {@code lr}, {@code grad_norm} (NaN where the optimizer computes none), {@code epoch};</li>
 *   <li>{@code tgs}: tokens per device per second, CoLLiE's TGS (this replica's tokens ÷ (tp · pp · seconds));
 *       {@code tokens_per_s} and {@code tokens}: all replicas; {@code step_seconds};</li>
 *   <li>{@code memory_mib}: the process's resident memory, {@code offheap_mib}: ND4J's arrays
 *       ({@link Memory#offHeapBytes()}), both MiB after the step;</li>
 *   <li>{@code comm_bytes}: what this rank's communicators sent during the step, when given their count.</li>
 * </ul>
 * Each evaluation's results go as group {@code eval} (TensorBoard's {@code eval/loss}, {@code eval/ppl}, ...) at
 * the step they follow, an evaluation after training too. With a dashboard, {@link Dashboard} draws loss, an
 * evaluation metric, lr and TGS at the end of training (again after a later evaluation) and on
 * {@link #writeDashboard demand}. The sinks' files are released when training exits. The time spent here is
 * counted against the steps' ({@link #overheadSeconds()}) and logged at the end.
 */
public final class Monitor implements Callback {
    private static final Logger LOG = LoggerFactory.getLogger(Monitor.class);
    private static final double MIB = 1024.0 * 1024.0;

    private final List<MonitorSink> sinks;
    private final int every;
    private final Path dashboardFile;
    private final Dashboard dashboard;
    private final LongSupplier bytesSent;
    private boolean active = true;
    private boolean training;
    private long bytesBefore;
    private long lastStep;
    private long overheadNanos;
    private double stepSeconds;
    private long steps;

    /** The sinks, cadence and dashboard of {@code config} (validated); {@code bytesSent} as below. */
    public Monitor(MonitorConfig config, LongSupplier bytesSent) {
        this(config.validate().createSinks(), config.every(), config.dashboardFile(), bytesSent);
    }

    /**
     * @param sinks         where the records go, in this order
     * @param every         log every this many steps (and the last)
     * @param dashboardFile the dashboard's PNG, or null for none
     * @param bytesSent     the payload bytes this rank's communicators have sent so far (collie-parallel's
     *                      {@code Parallelism::bytesSent}), or null: no {@code comm_bytes}
     */
    public Monitor(List<MonitorSink> sinks, int every, Path dashboardFile, LongSupplier bytesSent) {
        if (every < 1) {
            throw new IllegalArgumentException("every must be >= 1, got " + every);
        }
        this.sinks = List.copyOf(sinks);
        this.every = every;
        this.dashboardFile = dashboardFile;
        this.bytesSent = bytesSent;
        if (dashboardFile != null) {
            Dashboard.requireXChart();
            this.dashboard = new Dashboard("collie train", null);
        } else {
            this.dashboard = null;
        }
    }

    @Override
    public void onTrainBegin(Trainer trainer) {
        active = trainer == null || trainer.isLeadRank();
        training = true;
    }

    @Override
    public void onBatchBegin(Trainer trainer, long step) {
        if (active && bytesSent != null) {
            long t0 = System.nanoTime();
            bytesBefore = bytesSent.getAsLong();
            overheadNanos += System.nanoTime() - t0;
        }
    }

    @Override
    public void onBatchEnd(Trainer trainer, StepStats s) {
        if (!active) {
            return;
        }
        long t0 = System.nanoTime();
        lastStep = s.step();
        stepSeconds += s.seconds();
        steps++;
        if (s.step() % every == 0 || s.step() == s.totalSteps()) {
            Map<String, Double> v = new LinkedHashMap<>();
            v.put("loss", s.loss());
            v.put("lr", s.lr());
            v.put("tgs", s.tgs());
            v.put("tokens_per_s", s.tokensPerSecond());
            v.put("grad_norm", s.gradNorm());
            v.put("memory_mib", s.residentBytes() / MIB);
            v.put("offheap_mib", Memory.offHeapBytes() / MIB);
            v.put("step_seconds", s.seconds());
            v.put("tokens", (double) s.tokens());
            v.put("epoch", (double) s.epoch());
            if (bytesSent != null) {
                v.put("comm_bytes", (double) (bytesSent.getAsLong() - bytesBefore));
            }
            log(new Scalars("train", s.step(), now(), v));
        }
        overheadNanos += System.nanoTime() - t0;
    }

    @Override
    public void onEvaluateEnd(Trainer trainer, Map<String, Double> results) {
        if (!active || results.isEmpty()) {
            return;
        }
        long t0 = System.nanoTime();
        log(new Scalars("eval", trainer != null ? trainer.globalStep() : lastStep, now(), results));
        overheadNanos += System.nanoTime() - t0;
        if (!training && dashboard != null) {
            writeDashboard(dashboardFile);      // an evaluation after the run: the dashboard shows it too
        }
    }

    @Override
    public void onTrainEnd(Trainer trainer) {
        if (!active) {
            return;
        }
        if (dashboard != null) {
            writeDashboard(dashboardFile);
        }
        if (steps > 0) {
            LOG.info(String.format(Locale.ROOT, "monitor: %.3f ms a step, %.3f%% of the steps' time",
                    overheadSeconds() * 1e3 / steps, 100 * overheadSeconds() / stepSeconds));
        }
    }

    @Override
    public void onTrainExit(Trainer trainer) {
        training = false;
        for (MonitorSink s : sinks) {
            try {
                s.close();
            } catch (RuntimeException e) {      // training's own outcome (or error) comes first
                LOG.warn("monitor: {}", e.getMessage());
            }
        }
    }

    /** Draws the dashboard of the records so far into {@code png} (any time; needs a dashboard). */
    public void writeDashboard(Path png) {
        if (dashboard == null) {
            throw new IllegalStateException("this monitor keeps no dashboard: give it a dashboard file");
        }
        dashboard.write(png);
    }

    /** Seconds this monitor has spent in the training loop's events (the dashboard's drawing not counted). */
    public double overheadSeconds() {
        return overheadNanos / 1e9;
    }

    /** Seconds of the steps it has seen, as the steps measured them (the monitor's own work is outside them). */
    public double stepSeconds() {
        return stepSeconds;
    }

    private void log(Scalars r) {
        for (MonitorSink s : sinks) {
            s.write(r);
        }
        if (dashboard != null) {
            dashboard.add(r);
        }
    }

    private static double now() {
        return System.currentTimeMillis() / 1000.0;
    }
}
