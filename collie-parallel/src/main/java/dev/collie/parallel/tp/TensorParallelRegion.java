package dev.collie.parallel.tp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.LayerWrapper;
import dev.collie.core.nn.Tape;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The tensor-parallel region around a module whose column-parallel children share its input (attention:
 * q/k/v; MLP: gate/up). Forward passes through (the input is already replicated); backward sums the
 * inner module's partial input gradient over the ranks with one all-reduce (Megatron's f operator), so
 * the gradient leaving the region is whole and the same on every rank. Together with the row-parallel
 * layer's all-reduce in forward, a LLaMA block does one all-reduce per attention and per MLP each way.
 * A second face of the wrapped module: names and parameters are unchanged.
 */
public final class TensorParallelRegion extends LayerWrapper {
    private final Communicator tp;

    public TensorParallelRegion(Layer inner, Communicator tp) {
        super(inner);
        this.tp = tp;
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        return inner().forward(tape, x);
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray dx = inner().backward(tape, dy);
        return dx == null ? null : Shards.allReduceSum(tp, dx);
    }
}
