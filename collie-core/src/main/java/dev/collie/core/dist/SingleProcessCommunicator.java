package dev.collie.core.dist;

import dev.collie.core.CollieException;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * A world of one rank: every collective is an identity (or a copy), {@link #send} to oneself queues a copy
 * that {@link #recv} takes back, and a {@link #recv} with nothing queued fails at once (nobody else could send).
 */
public final class SingleProcessCommunicator implements Communicator {
    private final Duration timeout;
    private final Map<Integer, ArrayDeque<INDArray>> selfMessages = new HashMap<>();
    private long bytesSent;

    public SingleProcessCommunicator() {
        this(DEFAULT_TIMEOUT);
    }

    public SingleProcessCommunicator(Duration timeout) {
        this.timeout = timeout;
    }

    @Override public int rank() { return 0; }
    @Override public int size() { return 1; }
    @Override public Duration timeout() { return timeout; }
    @Override public long bytesSent() { return bytesSent; }

    @Override
    public void allReduce(INDArray inOut, ReduceOp op) {
        // one rank: SUM, AVG (divide by 1) and MAX are all the identity
    }

    @Override
    public void reduceScatter(INDArray in, INDArray outShard, ReduceOp op) {
        requireSameLength("reduceScatter", in, outShard);
        copy(in, outShard);
    }

    @Override
    public void allGather(INDArray shard, INDArray out) {
        requireSameLength("allGather", shard, out);
        copy(shard, out);
    }

    @Override
    public void broadcast(INDArray inOut, int root) {
        checkPeer("broadcast", root);
    }

    @Override
    public void send(INDArray array, int dst, int tag) {
        checkPeer("send", dst);
        selfMessages.computeIfAbsent(tag, t -> new ArrayDeque<>()).add(array.dup('c'));
        bytesSent += array.length() * array.dataType().width();
    }

    @Override
    public void recv(INDArray into, int src, int tag) {
        checkPeer("recv", src);
        ArrayDeque<INDArray> q = selfMessages.get(tag);
        if (q == null || q.isEmpty()) {
            throw new CollieException("recv on rank 0 of 1: no message with tag " + tag
                    + " was sent to itself, and no other rank exists to send one");
        }
        INDArray m = q.poll();
        requireSameLength("recv", m, into);
        copy(m, into);
    }

    @Override
    public void barrier() { }

    @Override
    public Communicator subGroup(int[] ranks) {
        if (ranks.length == 0) {
            throw new IllegalArgumentException("subGroup: the rank list is empty");
        }
        for (int r : ranks) {
            checkPeer("subGroup", r);
        }
        if (ranks.length > 1) {
            throw new IllegalArgumentException("subGroup: rank 0 listed " + ranks.length + " times");
        }
        return this;
    }

    @Override
    public void close() { }

    private static void checkPeer(String op, int r) {
        if (r != 0) {
            throw new IllegalArgumentException(op + ": rank " + r + " does not exist in a world of 1");
        }
    }

    private static void requireSameLength(String op, INDArray a, INDArray b) {
        if (a.length() != b.length()) {
            throw new IllegalArgumentException(op + ": lengths differ (" + a.length() + " vs " + b.length()
                    + ") in a world of 1");
        }
    }

    /** Copies {@code from} into {@code to} element by element in c order (lengths already checked equal). */
    private static void copy(INDArray from, INDArray to) {
        to.assign(from.dup('c').reshape(to.shape()));
    }
}
