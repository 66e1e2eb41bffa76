package dev.collie.core.nn;

/**
 * Called once per optimizer step for each trainable parameter, the moment its gradient is complete
 * (after the last micro-batch's backward has delivered every contribution, tied uses included).
 * The default keeps the gradient for {@code optimizer.step()}; fused-backward optimizers (LOMO) update
 * the parameter and free its gradient here; data parallel launches its all-reduce here.
 */
@FunctionalInterface
public interface GradientHook {
    /** Keeps the gradient on the parameter: the default. */
    GradientHook KEEP = p -> { };

    void onGradientReady(Parameter parameter);
}
