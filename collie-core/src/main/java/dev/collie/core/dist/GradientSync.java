package dev.collie.core.dist;

/**
 * What the Trainer needs from data parallelism: this rank's place among the replicas (for its share of
 * the data), a wait for the gradient reductions launched from the gradient hooks, and the average of a
 * value over the replicas. Implemented by collie-parallel's {@code DataParallel}.
 */
public interface GradientSync {
    /** This replica's index among {@link #size()}. */
    int rank();

    /** Number of data-parallel replicas. */
    int size();

    /** Waits until every gradient of the step is reduced across the replicas; call before clipping and stepping. */
    void finish();

    /** The mean of {@code value} over the replicas (e.g. the step's loss). */
    double average(double value);

    /**
     * Averages one parameter's gradient over the replicas now, in place, before returning: for optimizers
     * that consume each gradient inside backward (LOMO, AdaLomo). Every replica must call it for the same
     * parameters in the same order (one stream of backward per replica).
     */
    void reduce(dev.collie.core.nn.Parameter p);

    /** Whether each replica's optimizer holds a different shard of the state (ZeRO): checkpoints then keep all. */
    default boolean shardsOptimizerState() {
        return false;
    }

    /** After the optimizer step (ZeRO: each replica updated its shard; the shards are shared here). */
    default void afterStep() {
    }
}
