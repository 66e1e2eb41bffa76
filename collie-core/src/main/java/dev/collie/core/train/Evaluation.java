package dev.collie.core.train;

import java.util.List;
import java.util.Map;

/**
 * An evaluation the {@link Trainer} runs with its own every {@code eval_per_n_steps} steps, its results joining the
 * evaluation loss in {@link Callback#onEvaluateEnd} (where monitors log them and checkpoint callbacks watch them):
 * collie-models' {@code Evaluator} (generation, classification, perplexity) is one.
 */
public interface Evaluation {
    /** The result names {@link #evaluate()} reports, known before training so a watched name can be checked. */
    List<String> producedKeys();

    /**
     * Evaluates the model as it is now and returns the results by name. Every rank calls it: an evaluation over
     * data-parallel replicas takes its share of the data and gathers.
     */
    Map<String, Double> evaluate();
}
