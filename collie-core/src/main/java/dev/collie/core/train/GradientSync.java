package dev.collie.core.train;

import dev.collie.core.Scope;
import dev.collie.core.nn.Parameter;

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
    void reduce(Parameter p);

    /** Whether each replica's optimizer holds a different shard of the state (ZeRO): checkpoints then keep all. */
    default boolean shardsOptimizerState() {
        return false;
    }

    /** After the optimizer step (ZeRO: each replica updated its shard; the shards are shared here). */
    default void afterStep() {
    }

    /**
     * Whether, after {@link #finish()}, a replica holds only the gradients of the parameters it owns (ZeRO-2/3):
     * a global gradient norm then sums every replica's share.
     */
    default boolean shardsGradients() {
        return false;
    }

    /**
     * Whether some parameters are split into row blocks across the replicas (ZeRO-2/3 balancing), so no replica
     * updates them whole: optimizers that update inside backward (LOMO, AdaLomo) cannot run then.
     */
    default boolean splitsParameters() {
        return false;
    }

    /** Whether each replica must run forward and backward on one thread (ZeRO-3 gathers are collectives in program order). */
    default boolean requiresSingleStream() {
        return false;
    }

    /**
     * Makes every parameter's whole value present on this replica until the returned scope closes (ZeRO-3
     * gathers them from their owners; a collective on every replica); nothing to do elsewhere.
     */
    default Scope gatherParameters() {
        return Scope.NONE;
    }
}
