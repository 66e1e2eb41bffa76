package dev.collie.core.eval;

import dev.collie.core.dist.Communicator;

import java.util.Map;

/**
 * An evaluation metric: it takes the results of one batch at a time ({@link #update}), keeps only sufficient
 * statistics (counts, n-gram matches, lengths, sums of per-sentence scores), and computes its values from them
 * ({@link #get}). Under data parallelism each rank sees part of the data; {@link #gather} sums the statistics over
 * the ranks, after which every rank's {@link #get} is what one rank would give over all the data.
 *
 * <p>Write your own by implementing these four methods and register it by name in a {@link MetricRegistry}. A
 * metric is used by one thread at a time.
 */
public interface Metric {
    /**
     * Adds one batch's results.
     *
     * @throws dev.collie.core.CollieException when the batch lacks the part this metric reads, naming it
     */
    void update(EvalBatch batch);

    /**
     * The values over every batch since the last {@link #reset}, by name (such as {@code "bleu"},
     * {@code "rouge-l-f"}, {@code "accuracy"}, {@code "f1-macro"}), in a fixed order. A value with nothing to average
     * over (no tokens, no sentences) is NaN.
     */
    Map<String, Double> get();

    /** Forgets every batch. */
    void reset();

    /**
     * Replaces this rank's statistics by their sum over {@code group} (a collective: every rank of the group calls
     * it, once per evaluation, after its last {@link #update}). A second call would count every batch again.
     */
    void gather(Communicator group);
}
