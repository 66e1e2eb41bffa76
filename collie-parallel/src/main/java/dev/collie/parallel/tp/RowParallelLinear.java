package dev.collie.parallel.tp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.dist.Sharding;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A row-parallel linear (Megatron): rank r of n keeps input features {@code [r·in/n, (r+1)·in/n)}, i.e.
 * those columns of the {@code [out, in]} weight, and the whole bias (replicated). Forward multiplies this
 * rank's share of the input {@code [rows, in/n]} (the output of column-parallel layers), sums the partial
 * outputs over the ranks (one all-reduce, Megatron's g operator) and then adds the bias once. Backward
 * communicates nothing: the output gradient is the same on every rank, so the local input gradient
 * {@code [rows, in/n]} and weight gradient follow directly, and the bias gradient is the same everywhere.
 */
public final class RowParallelLinear extends Module implements Layer {
    private final Parameter weight;
    private final Parameter bias;
    private final Communicator tp;

    public RowParallelLinear(Linear full, Communicator tp) {
        Shards.requireDivisible("in_features", full.inFeatures(), tp.size());
        this.tp = tp;
        this.weight = registerParameter("weight", Shards.shardParameter(full.weight(), ParallelStyle.ROW, tp.rank(), tp.size()));
        weight.setSharding(new Sharding(ParallelStyle.ROW, tp));      // the bias is replicated (whole)
        this.bias = full.bias() == null ? null
                : registerParameter("bias", Shards.shardParameter(full.bias(), ParallelStyle.REPLICATE, tp.rank(), tp.size()));
    }

    public Parameter weight() {
        return weight;
    }

    /** The bias (replicated on every rank), or null. */
    public Parameter bias() {
        return bias;
    }

    public long outFeatures() {
        return weight.shape()[0];
    }

    /** This rank's input features. */
    public long localInFeatures() {
        return weight.shape()[1];
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        // the partial products are summed over the ranks before the (replicated) bias is added, once
        INDArray y = Shards.allReduceSum(tp, Linear.project(tape, this, x, weight, null));
        return Linear.addBias(tape, y, bias);
    }

    /** This rank's share of the input gradient {@code [rows, in/n]}; no communication. */
    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        return Linear.projectBackward(tape, this, dy, weight, bias);
    }
}
