package dev.collie.core.nn;

import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** {@code y = x · Wᵀ (+ b)} on rows {@code [n, in] → [n, out]}; the weight is {@code [out, in]} as in PyTorch. */
public final class Linear extends Module implements Layer {
    private final Parameter weight;
    private final Parameter bias;

    public Linear(long in, long out, boolean bias, DataType dtype, double initStd) {
        this.weight = registerParameter("weight", new Parameter(Init.normal(dtype, initStd, out, in)));
        this.bias = bias ? registerParameter("bias", new Parameter(Init.zeros(dtype, out))) : null;
    }

    private Linear(Parameter sharedWeight) {
        this.weight = registerParameter("weight", sharedWeight);
        this.bias = null;
    }

    /**
     * A bias-free linear over an existing {@code [out, in]} parameter, e.g. an output head tied to the
     * input embedding: the parameter is used twice per forward and its hook fires once, after both.
     */
    public static Linear sharing(Parameter weight) {
        return new Linear(weight);
    }

    public Parameter weight() {
        return weight;
    }

    /** The bias, or null. */
    public Parameter bias() {
        return bias;
    }

    public long inFeatures() {
        return weight.shape()[1];
    }

    public long outFeatures() {
        return weight.shape()[0];
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        tape.use(weight);
        INDArray y = Kernels.get().matmul(x, weight.data(), false, true);
        if (bias != null) {
            tape.use(bias);
            y.addiRowVector(bias.data());
        }
        tape.save(this, x);
        return y;
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray x = tape.pop(this);
        // the input gradient first: a fused-backward optimizer (LOMO) updates the weight inside its hook
        INDArray dx = Kernels.get().matmul(dy, weight.data(), false, false);
        if (weight.requiresGrad()) {
            weight.accumulateGrad(tape, Kernels.get().matmul(dy, x, true, false));
        }
        if (bias != null && bias.requiresGrad()) {
            bias.accumulateGrad(tape, dy.sum(0));
        }
        return dx;
    }
}
