package dev.collie.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Called once per optimizer step for each trainable parameter, the moment its gradient is complete
 * (after the last micro-batch's backward has delivered every contribution, tied uses included), with that
 * gradient. The hook either leaves it to the parameter (returns true: {@code optimizer.step()} reads it later)
 * or consumes it (returns false: a fused-backward optimizer updated the parameter from it, a data-parallel
 * reduction took it). Installed by {@code dev.collie.core.train.GradientRoute}, the one place that composes them.
 */
@FunctionalInterface
public interface GradientHook {
    /** Keeps the gradient on the parameter: the default. */
    GradientHook KEEP = (p, grad) -> true;

    /**
     * @param grad the step's whole gradient of {@code parameter}; it may be the caller's array (no copy was made),
     *             valid only during this call
     * @return true when the parameter keeps {@code grad} as its gradient, false when the hook consumed it
     */
    boolean onGradientReady(Parameter parameter, INDArray grad);
}
