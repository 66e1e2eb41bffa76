package dev.collie.core.train;

import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;

import java.util.List;
import java.util.Map;

/**
 * What the {@link dev.collie.core.train.Trainer} needs from tensor and pipeline parallelism (the model split
 * over several ranks): the micro-batch runner (a pipeline schedule, or the plain runner over this rank's
 * shard of the model), the parameters this rank holds, the global gradient norm, and who writes files.
 * Implemented by collie-parallel.
 */
public interface ModelParallel {
    /** The runner of a step's forward and backward on this rank, with {@code workers} threads on {@code cores} cores. */
    MicroBatchRunner runner(int workers, int cores);

    /** The trainable parameters this rank holds (its tensor-parallel shard of its pipeline stage). */
    List<Parameter> trainableParameters();

    /** Every parameter this rank holds, frozen ones too, by Hugging Face name (what its checkpoint part stores). */
    Map<String, Parameter> heldParameters();

    /** This rank's index among the {@link #modelRanks()} ranks that together hold one copy of the model. */
    int modelRank();

    /** How many ranks hold one copy of the model between them (tensor × pipeline parallel size). */
    int modelRanks();

    /** Returns once every rank holding this copy of the model has entered it. */
    void barrier();

    /**
     * Work between backward (and the data-parallel reduction) and clipping: e.g. summing the gradients of
     * a weight tied across the first and last pipeline stage.
     */
    void afterBackward();

    /**
     * The squared L2 norm of the whole model's gradient: this rank's share summed over the model's ranks,
     * a parameter replicated across tensor-parallel ranks counted once.
     */
    double gradNormSquared();

    /**
     * Called once by the Trainer with the optimizer that trains this rank's part, after it installed the gradient
     * hooks: whatever the optimizer needs from the split goes in here (a fused-backward optimizer's two-pass
     * gradient norm summed over the model's ranks, the update of a weight tied across pipeline stages deferred
     * until the stages' gradients are summed). Nothing by default.
     */
    default void attach(Optimizer optimizer) {
    }

    /**
     * Whether the model itself is split over ranks (tensor or pipeline parallel); false when only its
     * gradients and state are (ZeRO-2/3 data parallel), so every rank runs the whole forward.
     */
    default boolean splitsModel() {
        return true;
    }

    /** Whether this rank speaks for the model (logs, files): tensor-parallel rank 0 of the first stage. */
    boolean isLeadRank();
}
