package dev.collie.core.train;

import dev.collie.core.data.Batch;

import java.util.List;

/**
 * Runs the forward and backward passes of one optimizer step for the {@link Trainer}: {@link StepRunner}
 * on one rank (or one tensor-parallel group), a pipeline schedule when the model is cut into stages.
 */
public interface MicroBatchRunner extends AutoCloseable {
    /**
     * Forward and backward of the step's micro-batches, each gradient scaled by 1/{@code micro.size()}, the
     * parameters' hooks firing on the last; returns the mean of the micro-batch losses, the same value on
     * every rank of the model.
     */
    double forwardBackward(List<Batch> micro);

    /** The token-mean loss of one batch, forward only (evaluation); the same value on every rank of the model. */
    double loss(Batch batch);

    /** Stops any threads; a later call starts new ones. */
    @Override
    void close();
}
