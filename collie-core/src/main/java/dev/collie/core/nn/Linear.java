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
        return project(tape, this, x, weight, bias);
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        return projectBackward(tape, this, dy, weight, bias);
    }

    /** What a linear over a frozen weight saves: its backward reads no input. */
    private static final Object FROZEN = new Object();

    /**
     * The forward of a linear layer {@code owner} over {@code weight} {@code [out, in]} and {@code bias}
     * {@code [out]} (or null): {@code x · Wᵀ (+ b)}, recording the parameters' uses and saving {@code x} for
     * {@link #projectBackward}. Layers that own a slice of a linear (tensor parallelism) share it.
     */
    public static INDArray project(Tape tape, Object owner, INDArray x, Parameter weight, Parameter bias) {
        tape.use(weight);
        INDArray y = Kernels.get().matmul(x, weight.data(), false, true);
        // a frozen weight's backward needs no input (dx = dy · W): nothing is kept for it
        tape.save(owner, weight.requiresGrad() ? tape.stash(x) : FROZEN);
        return addBias(tape, y, bias);
    }

    /** Adds {@code bias} (or nothing, when null) to every row of {@code y} in place, recording its use. */
    public static INDArray addBias(Tape tape, INDArray y, Parameter bias) {
        if (bias != null) {
            tape.use(bias);
            y.addiRowVector(bias.data());
        }
        return y;
    }

    /**
     * The backward of {@link #project}: returns {@code dx = dy · W} and delivers {@code dW = dyᵀ · x} and
     * {@code db = Σ dy} (over rows) to the parameters that require them.
     */
    public static INDArray projectBackward(Tape tape, Object owner, INDArray dy, Parameter weight, Parameter bias) {
        Object stored = tape.pop(owner);
        // the input gradient first: a fused-backward optimizer (LOMO) updates the weight inside its hook
        INDArray dx = Kernels.get().matmul(dy, weight.data(), false, false);
        if (weight.requiresGrad()) {
            INDArray x = tape.restore((INDArray) stored);
            weight.accumulateGradInto(tape, into -> Kernels.get().matmul(dy, x, true, false, into));
        }
        if (bias != null && bias.requiresGrad()) {
            bias.accumulateGrad(tape, dy.sum(0));
        }
        return dx;
    }
}
