package dev.collie.core.nn;

import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ParallelStyle;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What tensor parallelism hands a {@link TensorParallelizable} module when it splits the model (implemented by
 * collie-parallel's applier): the tensor-parallel group, the standard split of a {@link Linear}, the slicing of
 * full tensors, and the registry of split parameters. A module that splits its own parameters registers each one
 * here ({@link #shardParameter}), so the applier knows its split dimension: gathering full weights for saving,
 * slicing full tensors on load and counting gradient norms (a replicated parameter once per group) all use it.
 *
 * <p>Split dimensions follow the styles: {@link ParallelStyle#COLUMN} and {@link ParallelStyle#VOCAB} split
 * dimension 0 (rank r keeps rows {@code [r·d/n, (r+1)·d/n)}), {@link ParallelStyle#ROW} dimension 1 (columns),
 * {@link ParallelStyle#REPLICATE} nothing.
 */
public interface TensorParallelContext {
    /** The tensor-parallel group; its collectives are called from the rank's own forward/backward thread. */
    Communicator communicator();

    /** This rank's index in the tensor-parallel group. */
    default int rank() {
        return communicator().rank();
    }

    /** Number of tensor-parallel ranks. */
    default int size() {
        return communicator().size();
    }

    /**
     * The standard tensor-parallel replacement of {@code full} for {@code style} ({@link ParallelStyle#COLUMN} or
     * {@link ParallelStyle#ROW}): a module that is also a {@link Layer}, holding this rank's shard of the weight
     * (and bias) under the names {@code weight} and {@code bias}, trainable as {@code full}'s are, registered as
     * split. A column-parallel layer returns a partial input gradient (its parent's region sums it); a
     * row-parallel layer takes this rank's share of the input and returns the summed output.
     */
    Module shardLinear(Linear full, ParallelStyle style);

    /**
     * {@code full} (no bias) kept whole on every rank where its output feeds a column-parallel layer: its output
     * gradient then arrives partial (each rank's share of that layer's input gradient), so the replacement sums its
     * weight gradient over the group (through whichever of the output gradient {@code [rows, out]} and the weight
     * gradient {@code [out, in]} is smaller) and returns a partial input gradient, for the enclosing region to sum.
     * The weight is {@code full}'s own parameter.
     */
    Module replicateBeforeColumn(Linear full);

    /** This rank's shard of a full tensor along {@code style}'s dimension (a contiguous copy outside workspaces). */
    INDArray shardOf(INDArray full, ParallelStyle style);

    /** This rank's part of a full tensor, cut as {@code shard} was cut (its {@link Parameter#sharding()}, sections too). */
    INDArray shardLike(INDArray full, Parameter shard);

    /**
     * A parameter holding this rank's shard of {@code full} (trainable as {@code full} is), registered as split by
     * {@code style}; for {@link ParallelStyle#REPLICATE} {@code full} itself, registered as replicated.
     */
    Parameter shardParameter(Parameter full, ParallelStyle style);

    /**
     * Sums {@code a} over the tensor-parallel ranks; returns the array holding the sum ({@code a} itself when it is
     * contiguous, else a copy). Every rank gets a bit-identical result.
     */
    INDArray allReduceSum(INDArray a);
}
