package dev.collie.core.optim;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * An optimizer that updates each parameter inside backward, the moment its gradient is complete, and
 * frees that gradient at once (LOMO, AdaLomo): no full set of gradients ever exists. The Trainer's
 * gradient route ends in {@link #onGradientReady} for every parameter, the Trainer calls {@link #beginStep} before the
 * step's backward passes, and never calls {@link #step}. Layers compute input gradients from the
 * weights as they were before the update (the {@link dev.collie.core.nn.Layer} contract).
 */
public interface FusedBackwardOptimizer extends Optimizer {
    @Override
    default boolean fusedBackward() {
        return true;
    }

    /** Fused optimizers do their work in {@link #onGradientReady}; a separate step does nothing. */
    @Override
    default void step(double lr) {
    }

    /** Called before the backward pass(es) of an optimizer step, with that step's learning rate. */
    void beginStep(double lr);

    /**
     * Backward passes one step needs: 1, or 2 where the first pass only measures the global gradient
     * norm for clipping (LOMO's clip_grad_norm) and the second applies the clipped update.
     */
    default int passes() {
        return 1;
    }

    /** Called before each backward pass of a step, numbered from 0. */
    default void beginPass(int pass) {
    }

    /**
     * Whether the last step's update was withheld because its gradients were not finite: with two passes the whole
     * step (its global norm is measured first); with one, each parameter whose gradient has a non-finite element
     * keeps its value while the others are updated (no full set of gradients exists to decide first). The Trainer
     * counts such a step as skipped.
     */
    default boolean withheldLastStep() {
        return false;
    }

    /**
     * Updates {@code p} from its complete gradient {@code grad} (which it may overwrite) and releases the
     * parameter's gradient buffer: called from the parameter's gradient route, inside backward.
     */
    void onGradientReady(Parameter p, INDArray grad);

    /**
     * Makes the global gradient norm of a {@link #passes() two-pass} step the whole model's when this rank holds
     * only part of it (tensor or pipeline parallelism): in the first pass only the parameters
     * {@link GradNormReducer#counts counted} here add their squared norm, and before the second pass the sum goes
     * through {@link GradNormReducer#reduce}. Installed by whoever splits the model (collie-parallel, through the
     * Trainer); null restores the local norm. The default accepts it only for a one-pass optimizer, which
     * measures no norm.
     *
     * @throws CollieException when this optimizer takes several passes but cannot use a reducer
     */
    default void setGradNormReducer(GradNormReducer reducer) {
        if (reducer != null && passes() > 1) {
            throw new CollieException(getClass().getSimpleName() + " takes " + passes() + " backward passes per step"
                    + " but cannot sum its gradient norm over the ranks that hold the model, so its clipping would see"
                    + " this rank's share only");
        }
    }

    /**
     * How one rank's share of a squared gradient norm becomes the whole model's: which parameters count here
     * (a copy held by several ranks counts on one of them) and the sum over the ranks.
     */
    interface GradNormReducer {
        /**
         * Whether {@code p}'s gradient counts towards the norm on this rank: false for a copy that another rank
         * counts (a parameter replicated over tensor-parallel ranks counts on the first, a weight tied across
         * pipeline stages on its first stage).
         */
        boolean counts(Parameter p);

        /**
         * The whole model's squared norm from this rank's share; a collective: every rank of the model calls it
         * once per step, at the same point.
         */
        double reduce(double localSquared);
    }
}
