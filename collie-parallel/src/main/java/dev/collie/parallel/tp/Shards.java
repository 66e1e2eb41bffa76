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

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Slicing of full tensors into tensor-parallel shards, and the in-place all-reduce the layers share. */
final class Shards {
    private Shards() {
    }

    /** See {@link TensorParallel#shardOf}. */
    static INDArray shardOf(INDArray full, ParallelStyle style, int rank, int n) {
        return shardOf(full, style, rank, n, List.of());
    }

    /**
     * As {@link #shardOf(INDArray, ParallelStyle, int, int)}, cutting each of {@code sections} (lengths along the
     * split dimension, in order) into {@code n} blocks and keeping the rank's block of each, concatenated.
     */
    static INDArray shardOf(INDArray full, ParallelStyle style, int rank, int n, List<Long> sections) {
        if (!sections.isEmpty() && n > 1) {
            int dim = Sharding.dimOf(style);
            List<INDArray> parts = new ArrayList<>();
            long start = 0;
            for (long len : sections) {
                INDArray section = full.get(range(full.rank(), dim, start, start + len));
                parts.add(shardOf(section, style, rank, n, List.of()));
                start += len;
            }
            if (start != full.size(dim)) {
                throw new IllegalArgumentException("sections " + sections + " do not add up to dimension " + dim
                        + " of shape " + Arrays.toString(full.shape()));
            }
            try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                return contiguous(Nd4j.concat(dim, parts.toArray(INDArray[]::new)));   // (a vector's concat is 'f')
            }
        }
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
            return full.get(range(full.rank(), dim, rank * per, (rank + 1) * per)).dup('c');
        }
    }

    /** Indices selecting {@code [from, to)} of dimension {@code dim} and all of every other. */
    static INDArrayIndex[] range(int rank, int dim, long from, long to) {
        INDArrayIndex[] idx = new INDArrayIndex[rank];
        for (int d = 0; d < idx.length; d++) {
            idx[d] = d == dim ? NDArrayIndex.interval(from, to) : NDArrayIndex.all();
        }
        return idx;
    }

    /** A parameter holding this rank's shard of {@code full}, trainable as {@code full} is. */
    static Parameter shardParameter(Parameter full, ParallelStyle style, int rank, int n) {
        return shardParameter(full, style, rank, n, List.of());
    }

    /** A parameter holding this rank's shard of {@code full} (by sections, if any), trainable as {@code full} is. */
    static Parameter shardParameter(Parameter full, ParallelStyle style, int rank, int n, List<Long> sections) {
        return new Parameter(shardOf(full.data(), style, rank, n, sections)).setTrainable(full.requiresGrad());
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
