package dev.collie.parallel.tp;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import dev.collie.core.dist.Sharding;
import dev.collie.core.nn.Parameter;
import dev.collie.core.dist.ParallelStyle;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.Arrays;

/** Slicing of full tensors into tensor-parallel shards, and the in-place all-reduce the layers share. */
final class Shards {
    private Shards() {
    }

    /** See {@link TensorParallel#shardOf}. */
    static INDArray shardOf(INDArray full, ParallelStyle style, int rank, int n) {
        if (n < 1 || rank < 0 || rank >= n) {
            throw new IllegalArgumentException("rank " + rank + " of " + n + " tensor-parallel ranks");
        }
        int dim = Sharding.dimOf(style);
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            if (dim < 0 || n == 1) {
                return full.dup('c');
            }
            if (dim >= full.rank()) {
                throw new IllegalArgumentException(style + " splits dimension " + dim + ", but the array has shape "
                        + Arrays.toString(full.shape()) + " (a row-parallel layer's bias is REPLICATE)");
            }
            long len = full.size(dim);
            if (len % n != 0) {
                throw new IllegalArgumentException("dimension " + dim + " of shape " + Arrays.toString(full.shape())
                        + " (" + len + ") is not divisible by " + n + " tensor-parallel ranks");
            }
            long per = len / n;
            INDArrayIndex[] idx = new INDArrayIndex[full.rank()];
            for (int d = 0; d < idx.length; d++) {
                idx[d] = d == dim ? NDArrayIndex.interval(rank * per, (rank + 1) * per) : NDArrayIndex.all();
            }
            return full.get(idx).dup('c');
        }
    }

    /** A parameter holding this rank's shard of {@code full}, trainable as {@code full} is. */
    static Parameter shardParameter(Parameter full, ParallelStyle style, int rank, int n) {
        return new Parameter(shardOf(full.data(), style, rank, n)).setTrainable(full.requiresGrad());
    }

    /** {@code a} itself when the communicator can use it in place (contiguous c-order), else a c-order copy. */
    static INDArray contiguous(INDArray a) {
        return a.ordering() == 'c' && Shape.hasDefaultStridesForShape(a) ? a : a.dup('c');
    }

    /** Sums {@code a} over the tensor-parallel ranks; returns the (possibly copied) array holding the sum. */
    static INDArray allReduceSum(Communicator tp, INDArray a) {
        INDArray c = contiguous(a);
        if (tp.size() > 1) {
            tp.allReduce(c, ReduceOp.SUM);
        }
        return c;
    }

    static void requireDivisible(String what, long value, int n) {
        if (value % n != 0) {
            throw new CollieException(what + " " + value + " is not divisible by the tensor-parallel size " + n);
        }
    }
}
