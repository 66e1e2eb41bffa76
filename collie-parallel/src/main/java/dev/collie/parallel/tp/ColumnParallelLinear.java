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

import java.util.List;

/**
 * A column-parallel linear (Megatron): rank r of n keeps output features {@code [r·out/n, (r+1)·out/n)},
 * i.e. those rows of the {@code [out, in]} weight (and of the bias), under the names {@code weight} and
 * {@code bias}. Forward maps the replicated input {@code [rows, in]} to this rank's share of the output
 * {@code [rows, out/n]}; backward returns this rank's <em>partial</em> input gradient and communicates
 * nothing: the {@link TensorParallelRegion} around the module that owns the column linears (attention,
 * MLP) sums their input gradients over the ranks once (Megatron's f operator).
 */
public final class ColumnParallelLinear extends Module implements Layer {
    private final Parameter weight;
    private final Parameter bias;
    private final int rank;
    private final int size;

    /** This rank's shard of {@code full}; {@code tp} gives rank and size (no communication happens here). */
    public ColumnParallelLinear(Linear full, Communicator tp) {
        this(full, tp, List.of());
    }

    /**
     * This rank's block of each of the output {@code sections} of {@code full} (lengths summing to its output
     * features, e.g. a fused projection's queries, keys and values), side by side; empty: one section.
     */
    public ColumnParallelLinear(Linear full, Communicator tp, List<Long> sections) {
        this(full, tp.rank(), tp.size(), sections);
        // whole-tensor statistics of the weight and bias (AdaLomo) sum over tp: split along dimension 0
        weight.setSharding(new Sharding(ParallelStyle.COLUMN, tp, sections));
        if (bias != null) {
            bias.setSharding(new Sharding(ParallelStyle.COLUMN, tp, sections));
        }
    }

    /** Rank {@code rank}'s shard of {@code full} over {@code size} tensor-parallel ranks. */
    public ColumnParallelLinear(Linear full, int rank, int size) {
        this(full, rank, size, List.of());
    }

    private ColumnParallelLinear(Linear full, int rank, int size, List<Long> sections) {
        Shards.requireDivisible("out_features", full.outFeatures(), size);
        for (long s : sections) {
            Shards.requireDivisible("an output section of", s, size);
        }
        this.rank = rank;
        this.size = size;
        this.weight = registerParameter("weight", Shards.shardParameter(full.weight(), ParallelStyle.COLUMN, rank, size,
                sections));
        this.bias = full.bias() == null ? null : registerParameter("bias", Shards.shardParameter(full.bias(),
                ParallelStyle.COLUMN, rank, size, sections));
    }

    public Parameter weight() {
        return weight;
    }

    /** This rank's share of the bias, or null. */
    public Parameter bias() {
        return bias;
    }

    /** This rank's output features. */
    public long localOutFeatures() {
        return weight.shape()[0];
    }

    public long inFeatures() {
        return weight.shape()[1];
    }

    /** The unsplit layer's output features. */
    public long outFeatures() {
        return localOutFeatures() * size;
    }

    public int rank() {
        return rank;
    }

    public int size() {
        return size;
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        return Linear.project(tape, this, x, weight, bias);
    }

    /** The partial input gradient {@code dy · W_r} (summed over ranks by the enclosing region). */
    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        return Linear.projectBackward(tape, this, dy, weight, bias);
    }
}
