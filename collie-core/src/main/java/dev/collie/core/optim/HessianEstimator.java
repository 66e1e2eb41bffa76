package dev.collie.core.optim;

/**
 * An optimizer with a diagonal Hessian estimate refreshed every {@link #hessianInterval()} steps
 * (SophiaG). The Trainer then samples labels from the model's own softmax on the step's batch, runs a
 * backward with them, and calls {@link #updateHessian()}, which reads the parameters' gradients
 * (Gauss-Newton-Bartlett estimator: {@code h ← β2·h + (1−β2)·g²}).
 */
public interface HessianEstimator extends Optimizer {
    /** Steps between Hessian refreshes (10 by default in Sophia). */
    int hessianInterval();

    /** Folds the current gradients into the Hessian estimate; the Trainer drops the gradients afterwards. */
    void updateHessian();
}
