/**
 * Evaluators, CoLLiE's {@code Evaluator*} classes: an {@link dev.collie.models.eval.Evaluator} runs a language
 * model over evaluation data ({@link dev.collie.models.eval.EvalData}) for one {@link dev.collie.models.eval.EvalTask}
 * (perplexity, generation, classification in the harness or the helm style) and feeds the results to the metrics of
 * {@code dev.collie.core.eval}, gathered over data-parallel ranks.
 */
package dev.collie.models.eval;
