package dev.collie.core.dist;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.time.Duration;

/**
 * Collective and point-to-point communication among the ranks of one group (torch.distributed's
 * process group). Every rank of the group must call the same collectives in the same order.
 *
 * <p>Arrays must be contiguous c-order arrays. Reductions accept FLOAT, DOUBLE, INT32 and INT64; the pure
 * copies ({@link #allGather}, {@link #broadcast}, {@link #send}, {@link #recv}) accept any data type.
 * Reductions are deterministic: every rank gets a bit-identical result, the same on every run.
 *
 * <p>Every blocking call waits at most {@link #timeout()} for each message; if nothing arrives it throws a
 * {@link dev.collie.core.CollieException} naming the operation, this rank and the peer it waited for.
 * A communicator is used by one thread at a time (its rank's thread).
 */
public interface Communicator extends AutoCloseable {
    /** Default for {@link #timeout()}. */
    Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    /** This rank's index in the group, 0 ≤ rank &lt; size. */
    int rank();

    /** Number of ranks in the group. */
    int size();

    /** Reduces {@code inOut} over all ranks in place; afterwards every rank holds the same result. */
    void allReduce(INDArray inOut, ReduceOp op);

    /**
     * Reduces {@code in} over all ranks and keeps block {@code rank()} of the result in {@code outShard}.
     * {@code in.length()} must equal {@code size() * outShard.length()}.
     */
    void reduceScatter(INDArray in, INDArray outShard, ReduceOp op);

    /** Concatenates every rank's {@code shard} in rank order into {@code out} (length size × shard length). */
    void allGather(INDArray shard, INDArray out);

    /** Copies {@code root}'s {@code inOut} into every other rank's {@code inOut}. */
    void broadcast(INDArray inOut, int root);

    /** Sends {@code array} to rank {@code dst}; {@code tag} (0 ≤ tag &lt; 2^30) matches the receiver's. */
    void send(INDArray array, int dst, int tag);

    /** Receives a message sent with {@link #send} by {@code src} with {@code tag} into {@code into} (same length and type). */
    void recv(INDArray into, int src, int tag);

    /** Returns once every rank of the group has entered the barrier. */
    void barrier();

    /**
     * A communicator over the listed ranks (numbered as in this communicator, i.e. world ranks for the
     * world communicator); its rank {@code i} is {@code ranks[i]}. No communication takes place, but every
     * listed rank must call it with the same list. Returns {@code null} on a rank that is not listed.
     *
     * @throws IllegalArgumentException for an empty list, a duplicate or an out-of-range rank
     */
    Communicator subGroup(int[] ranks);

    /** Payload bytes this communicator (this rank) has sent so far. */
    long bytesSent();

    /** How long any blocking call waits for one message before failing. */
    Duration timeout();

    /** Releases this rank's resources; the world communicator closes its transport, sub-groups do nothing. */
    @Override
    void close();
}
