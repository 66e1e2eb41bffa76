package dev.collie.parallel.tp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A linear layer kept whole on every tensor-parallel rank where each rank uses only part of its output (LoRA's
 * {@code A} before a column-split {@code B}; the key/value projections when there are more ranks than key/value
 * heads): forward is the plain product; in backward the output gradient is partial, so the input gradient is
 * returned partial (the enclosing {@link TensorParallelRegion} sums it with the rest) and the weight gradient is
 * summed over the group first, through whichever of d(output) {@code [rows, out]} or dW {@code [out, in]} is smaller,
 * as is the bias gradient. Every rank's weight gets the whole, bit-identical gradient.
 */
final class ReplicatedBeforeColumnLinear extends Module implements Layer {
    private final Parameter weight;
    private final Parameter bias;
    private final Communicator tp;

    ReplicatedBeforeColumnLinear(Linear full, Communicator tp) {
        this.weight = registerParameter("weight", full.weight());
        this.bias = full.bias() == null ? null : registerParameter("bias", full.bias());
        this.tp = tp;
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        return Linear.project(tape, this, x, weight, bias);
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray stored = tape.pop(this);
        // the (partial) input gradient first: a fused-backward optimizer updates the weight inside its hook
        INDArray dx = Kernels.get().matmul(dy, weight.data(), false, false);
        if (weight.requiresGrad()) {
            INDArray x = tape.restore(stored);
            INDArray dw = dy.size(0) <= weight.shape()[1]
                    ? Kernels.get().matmul(Shards.allReduceSum(tp, dy), x, true, false)
                    : Shards.allReduceSum(tp, Kernels.get().matmul(dy, x, true, false));
            weight.accumulateGrad(tape, dw);
        }
        if (bias != null && bias.requiresGrad()) {
            bias.accumulateGrad(tape, Shards.allReduceSum(tp, dy.sum(0)));
        }
        return dx;
    }
}
