package dev.collie.core.train;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Records the training curve: loss and learning rate of every step, and the evaluation loss (and perplexity)
 * with the step at which it was measured. Add it to the {@link Trainer}'s callbacks and read it afterwards,
 * e.g. to plot it.
 */
public final class LossHistory implements Callback {
    /** One optimizer step. */
    public record Step(long step, double loss, double lr) {
    }

    /** One evaluation, after {@code step} optimizer steps. */
    public record Eval(long step, double loss, double ppl) {
    }

    private final List<Step> steps = new ArrayList<>();
    private final List<Eval> evals = new ArrayList<>();
    private Map<String, Double> lastResults = Map.of();

    @Override
    public void onBatchEnd(Trainer trainer, StepStats stats) {
        steps.add(new Step(stats.step(), stats.loss(), stats.lr()));
    }

    @Override
    public void onEvaluateEnd(Trainer trainer, Map<String, Double> results) {
        long step = trainer != null ? trainer.globalStep() : steps.isEmpty() ? 0 : steps.get(steps.size() - 1).step();
        double loss = results.getOrDefault("loss", Double.NaN);
        evals.add(new Eval(step, loss, results.getOrDefault("ppl", Math.exp(loss))));
        lastResults = Collections.unmodifiableMap(new LinkedHashMap<>(results));
    }

    /** Every result of the last evaluation, in its order (an evaluator's too), or none before the first. */
    public Map<String, Double> lastResults() {
        return lastResults;
    }

    /** Every step so far, in order. */
    public List<Step> steps() {
        return List.copyOf(steps);
    }

    /** Every evaluation so far, in order. */
    public List<Eval> evals() {
        return List.copyOf(evals);
    }

    /** The loss of the last step, NaN before the first. */
    public double lastLoss() {
        return steps.isEmpty() ? Double.NaN : steps.get(steps.size() - 1).loss();
    }

    /** The last evaluation, or null when there was none. */
    public Eval lastEval() {
        return evals.isEmpty() ? null : evals.get(evals.size() - 1);
    }
}
