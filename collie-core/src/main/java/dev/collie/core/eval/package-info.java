/**
 * Evaluation metrics: the {@link dev.collie.core.eval.Metric} interface (update with a batch, get named values,
 * reset, gather over data-parallel ranks by summing sufficient statistics), the batch they read
 * ({@link dev.collie.core.eval.EvalBatch}), the built-in metrics (accuracy, perplexity, BLEU, ROUGE,
 * precision/recall/F1, decoding) and a {@link dev.collie.core.eval.MetricRegistry} of them by name.
 */
package dev.collie.core.eval;
