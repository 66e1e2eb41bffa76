package dev.collie.core.optim;

import dev.collie.core.nn.Parameter;

/**
 * An optimizer that updates each parameter inside backward, the moment its gradient is complete, and
 * frees that gradient at once (LOMO, AdaLomo): no full set of gradients ever exists. The Trainer
 * installs {@link #onGradientReady} as every parameter's hook, calls {@link #beginStep} before the
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

    /** The gradient hook: update {@code p} from {@code p.grad()} and release the gradient. */
    void onGradientReady(Parameter p);
}
