package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CheckpointCallback;
import dev.collie.core.train.EarlyStoppingCallback;
import dev.collie.core.train.LoadBestModelCallback;
import dev.collie.core.train.TrackedMetric;
import dev.collie.core.train.Trainer;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code train}'s flags for what watches an evaluation value (a picocli mixin): {@code --save-top-k K} keeps the best
 * K checkpoints, {@code --load-best} ends with the best evaluation's weights, {@code --early-stop-patience N} stops
 * after N evaluations without improvement; each watches {@code --monitor-metric NAME} in {@code --metric-mode}, and
 * needs evaluations during training ({@code --eval-fraction} or {@code --eval-task}, and {@code --eval-every}). All
 * of it is checked before any work.
 */
final class WatchOptions {
    @Option(names = "--save-top-k", paramLabel = "K",
            description = "keep the K best checkpoints by --monitor-metric, as epoch_E-batch_B-NAME_VALUE in the"
                    + " checkpoint folder (-1: every evaluation's)")
    Integer saveTopK;
    @Option(names = "--monitor-metric", paramLabel = "NAME",
            description = "the evaluation result that --save-top-k, --load-best and --early-stop-patience watch:"
                    + " loss or ppl (--eval-fraction), or a value of --eval-task's metrics (bleu, rouge-l-f,"
                    + " accuracy, ...)")
    String monitorMetric;
    @Option(names = "--metric-mode", paramLabel = "MODE",
            description = "min (smaller is better; the default, as for loss and ppl) or max")
    String metricMode;
    @Option(names = "--load-best",
            description = "end with the weights of the best evaluation by --monitor-metric (kept meanwhile in"
                    + " <checkpoint folder>/best); --save gets them")
    boolean loadBest;
    @Option(names = "--early-stop-patience", paramLabel = "N",
            description = "stop after N evaluations in a row without improvement of --monitor-metric")
    Integer earlyStopPatience;
    @Option(names = "--early-stop-min-delta", paramLabel = "X",
            description = "with --early-stop-patience: an improvement must beat the best by more than X (default 0)")
    Double earlyStopMinDelta;

    /**
     * Refuses flags that would watch nothing: a flag of these without the others it needs, an unknown mode, a metric
     * that none of the run's evaluations reports ({@code keys}: the Trainer's own with evaluation data, an
     * {@code --eval-task}'s; empty without any) or no evaluation during training ({@code evalPerNSteps} 0).
     */
    void check(Set<String> keys, int evalPerNSteps) {
        String user = saveTopK != null ? "--save-top-k" : loadBest ? "--load-best"
                : earlyStopPatience != null ? "--early-stop-patience" : null;
        if (earlyStopMinDelta != null && earlyStopPatience == null) {
            throw new CollieException("--early-stop-min-delta applies to --early-stop-patience N: add it");
        }
        if (user == null) {
            if (monitorMetric != null || metricMode != null) {
                throw new CollieException((monitorMetric != null ? "--monitor-metric" : "--metric-mode")
                        + " applies to --save-top-k, --load-best or --early-stop-patience: add one of them");
            }
            return;
        }
        if (saveTopK != null && (saveTopK == 0 || saveTopK < -1)) {
            throw new CollieException("--save-top-k " + saveTopK + ": must be at least 1, or -1 for every"
                    + " evaluation's checkpoint");
        }
        if (earlyStopPatience != null) {
            CliSupport.atLeast("--early-stop-patience", earlyStopPatience, 1);
        }
        if (earlyStopMinDelta != null && !(earlyStopMinDelta >= 0 && Double.isFinite(earlyStopMinDelta))) {
            throw new CollieException("--early-stop-min-delta " + earlyStopMinDelta + ": must be a number >= 0");
        }
        // without any evaluation, the names --eval-fraction's evaluation would report
        String known = String.join(", ", keys.isEmpty() ? Trainer.EVALUATION_KEYS : keys);
        if (monitorMetric == null) {
            throw new CollieException(user + " needs --monitor-metric NAME, the evaluation result it watches: one of "
                    + known);
        }
        TrackedMetric metric = metric();
        if (keys.isEmpty() && Trainer.EVALUATION_KEYS.contains(metric.key())) {
            throw new CollieException(user + " watches the evaluation's " + metric.key() + ": add evaluation data,"
                    + " --eval-fraction F (e.g. 0.05)");
        }
        if (!keys.contains(metric.key())) {
            throw new CollieException("--monitor-metric " + metric.key() + ": the evaluation does not report it; it"
                    + " reports " + known + (keys.isEmpty() ? " with --eval-fraction F, and --eval-task TASK"
                    + " --eval-data FILE adds its metrics' names" : ""));
        }
        if (evalPerNSteps <= 0) {
            throw new CollieException(user + " watches the evaluation's " + metric.key() + " during training: add"
                    + " --eval-every N");
        }
    }

    /**
     * The callbacks for these flags, writing into {@code folder}: one checkpoint callback for the top k and, with
     * {@code checkpointEvery} (null for none), the periodic checkpoints of which it keeps the newest {@code keep};
     * then the best model's and early stopping's.
     */
    Callback[] callbacks(Path folder, Long checkpointEvery, int keep) {
        List<Callback> out = new ArrayList<>();
        if (checkpointEvery != null || saveTopK != null) {
            CheckpointCallback.Builder b = CheckpointCallback.builder(folder).keep(keep);
            if (checkpointEvery != null) {
                b.everyNSteps(checkpointEvery);
            }
            if (saveTopK != null) {
                b.topK(saveTopK, metric());
            }
            out.add(b.build());
        }
        if (loadBest) {
            out.add(new LoadBestModelCallback(folder, metric()));
        }
        if (earlyStopPatience != null) {
            out.add(new EarlyStoppingCallback(metric(), earlyStopPatience,
                    earlyStopMinDelta != null ? earlyStopMinDelta : 0));
        }
        return out.toArray(Callback[]::new);
    }

    /** After training, on the lead rank: a line saying that early stopping ended the run, when it did. */
    void report(Trainer trainer) {
        if (trainer.stoppedEarly()) {
            System.out.printf(Locale.ROOT, "early stopping: %s did not improve in %d evaluations; stopped after step"
                    + " %d of %d%n", monitorMetric, earlyStopPatience, trainer.globalStep(), trainer.totalSteps());
        }
    }

    private TrackedMetric metric() {
        return new TrackedMetric(monitorMetric, metricMode == null ? TrackedMetric.Mode.MIN
                : TrackedMetric.Mode.parse("--metric-mode", metricMode));
    }
}
