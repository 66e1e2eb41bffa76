package dev.collie.core.optim;

import dev.collie.core.nn.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Collection;
import java.util.Map;

/**
 * Updates parameters from their gradients. Two kinds exist and the API says which:
 * step-style optimizers (AdamW, Lion, ...) update all parameters in {@link #step} after backward;
 * fused-backward optimizers (LOMO, AdaLomo) update each parameter inside backward through its
 * {@link dev.collie.core.nn.GradientHook} and leave {@link #step} with nothing to do.
 */
public interface Optimizer {
    /** The parameters this optimizer updates, by name. */
    Map<String, Parameter> parameters();

    /** Applies one update, at learning rate {@code lr}, to every parameter that has a gradient, then drops the gradients. */
    void step(double lr);

    /** True for optimizers that update inside backward (see the class comment). */
    default boolean fusedBackward() {
        return false;
    }

    /** Every state tensor by a stable name, for checkpoints. */
    Map<String, INDArray> stateDict();

    /** Restores state saved by {@link #stateDict}. */
    void loadStateDict(Map<String, INDArray> state);

    /** Bytes of optimizer state currently held. */
    long stateBytes();

    /** Bytes held by per-parameter state tensors, for {@link #stateBytes()} implementations. */
    static long bytesOf(Collection<INDArray[]> states) {
        long n = 0;
        for (INDArray[] s : states) {
            for (INDArray a : s) {
                n += a.length() * a.dataType().width();
            }
        }
        return n;
    }
}
