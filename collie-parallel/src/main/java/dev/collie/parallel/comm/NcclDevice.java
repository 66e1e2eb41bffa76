package dev.collie.parallel.comm;

import dev.collie.core.dist.ReduceOp;
import org.nd4j.linalg.api.buffer.DataType;

import java.nio.ByteBuffer;
import java.time.Duration;

/**
 * What {@link NcclCommunicator} asks of one rank's NCCL communicator, on host memory: {@link NcclGroup} does
 * it with CUDA and NCCL; tests substitute an in-JVM imitation, so the communicator's own logic (rendezvous,
 * sub-groups, argument checks, AVG, byte counts, error messages) is tested on machines without a GPU.
 *
 * <p>Buffers are direct, native-order, position 0; their limits are the byte counts. A failure is an
 * {@link NcclFailure}; after one, the communicator is aborted and every later call fails.
 */
interface NcclDevice {
    /** Creates the per-rank communicators of one group. */
    interface Factory {
        /** The GPU that the process-local rank {@code localRank} uses. */
        int device(int localRank);

        /** A new rendezvous token (NCCL's unique id), made by the group's rank 0. */
        byte[] uniqueId(int device);

        /** Joins the group of {@code size} ranks named by {@code uniqueId} as {@code rank}; blocks until all have. */
        NcclDevice join(int device, byte[] uniqueId, int size, int rank, Duration timeout);
    }

    /** In-place reduction ({@link ReduceOp#SUM} or {@link ReduceOp#MAX}) of {@code count} elements. */
    void allReduce(ByteBuffer inOut, long count, DataType type, ReduceOp op, Duration timeout);

    /** Reduces {@code in} (size blocks of {@code countPerRank} elements) and keeps block {@code rank} in {@code out}. */
    void reduceScatter(ByteBuffer in, ByteBuffer out, long countPerRank, DataType type, ReduceOp op, int rank,
                       Duration timeout);

    /** Concatenates every rank's {@code shard} bytes in rank order into {@code out}. */
    void allGather(ByteBuffer shard, ByteBuffer out, int rank, Duration timeout);

    /** Copies the root's bytes into every rank's {@code inOut}. */
    void broadcast(ByteBuffer inOut, int root, boolean isRoot, Duration timeout);

    /** Returns once every rank has entered it. */
    void barrier(Duration timeout);

    /** Frees the communicator (aborting it where an operation failed). */
    void close();
}
