package dev.collie.core.train;

import dev.collie.core.CollieException;

import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The evaluation result a callback watches (CoLLiE's {@code monitor} with {@code larger_better}): the key of
 * {@link Trainer#evaluate()}'s results and whether smaller or larger values are better. A value that is not finite
 * is never better than another, so a NaN evaluation is never "best".
 *
 * @param key  the result's name, exactly as the evaluation reports it ({@code "loss"}, {@code "ppl"}, ...)
 * @param mode {@link Mode#MIN} when smaller is better, {@link Mode#MAX} when larger is
 */
public record TrackedMetric(String key, Mode mode) {
    /** Which way is better. */
    public enum Mode {
        /** Smaller is better (a loss, a perplexity). */
        MIN,
        /** Larger is better (an accuracy, BLEU). */
        MAX;

        /** {@code "min"} or {@code "max"}, any case; another word is an error naming {@code field}. */
        public static Mode parse(String field, String word) {
            String w = word == null ? "" : word.strip().toLowerCase(Locale.ROOT);
            return switch (w) {
                case "min" -> MIN;
                case "max" -> MAX;
                default -> throw new CollieException(field + " '" + word + "': expected min (smaller is better) or"
                        + " max (larger is better)");
            };
        }
    }

    public TrackedMetric {
        if (key == null || key.isBlank()) {
            throw new CollieException("the monitored metric needs a name (a key of the evaluation's results)");
        }
        if (key.contains("/") || key.contains("\\")) {
            throw new CollieException("monitored metric '" + key + "': a name with a path separator cannot be part"
                    + " of a checkpoint folder's name");
        }
        if (mode == null) {
            throw new CollieException("monitored metric '" + key + "': give a mode, min or max");
        }
    }

    /** {@code key}, smaller is better. */
    public static TrackedMetric min(String key) {
        return new TrackedMetric(key, Mode.MIN);
    }

    /** {@code key}, larger is better. */
    public static TrackedMetric max(String key) {
        return new TrackedMetric(key, Mode.MAX);
    }

    /** This metric's value in one evaluation's results; NaN when they lack it (then it is never better). */
    public double valueIn(Map<String, Double> results) {
        Double v = results.get(key);
        return v == null ? Double.NaN : v;
    }

    /** Whether {@code candidate} is strictly better than {@code than}; a value that is not finite never is. */
    public boolean better(double candidate, double than) {
        return improves(candidate, than, 0);
    }

    /**
     * Whether {@code candidate} improves on {@code best} by more than {@code minDelta} (early stopping's
     * {@code min_delta}); a value that is not finite never does.
     */
    public boolean improves(double candidate, double best, double minDelta) {
        if (!Double.isFinite(candidate)) {
            return false;
        }
        return mode == Mode.MIN ? candidate < best - minDelta : candidate > best + minDelta;
    }

    /**
     * Refuses, before the first step, a run in which {@code who} would watch nothing: the trainer has no evaluation
     * data, its evaluation does not report {@link #key}, or no evaluation falls within the steps this run will take.
     * Each message names the key and what the run has instead.
     */
    public void requireEvaluatedBy(Trainer trainer, String who) {
        Set<String> keys = trainer.evaluationKeys();
        if (keys.isEmpty()) {
            throw new CollieException(who + " watches '" + key + "', but the Trainer has no evaluation data, so"
                    + " nothing reports it: give evalData(...) (collie train: --eval-fraction F)");
        }
        if (!keys.contains(key)) {
            throw new CollieException(who + " watches '" + key + "', which the evaluation does not report; it"
                    + " reports: " + String.join(", ", keys));
        }
        CollieConfig c = trainer.config();
        long from = trainer.globalStep();
        long to = trainer.totalSteps();
        if (c.evalPerNSteps() <= 0) {
            throw new CollieException(who + " watches '" + key + "', but config eval_per_n_steps = 0: no evaluation"
                    + " runs during training (collie train: --eval-every N)");
        }
        if (to / c.evalPerNSteps() <= from / c.evalPerNSteps()) {
            throw new CollieException(who + " watches '" + key + "', but config eval_per_n_steps = "
                    + c.evalPerNSteps() + " leaves no evaluation within steps " + (from + 1) + " to " + to
                    + " of this run");
        }
    }

    @Override
    public String toString() {
        return key + " (" + (mode == Mode.MIN ? "smaller" : "larger") + " is better)";
    }
}
