package dev.collie.parallel.comm;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Arrays;

/**
 * Ring collectives over a {@link Transport}, shared by the local and tcp backends.
 *
 * <p>All-reduce is a ring reduce-scatter followed by a ring all-gather (each rank sends 2(n−1)/n of the
 * array); broadcast is a chunked chain from the root; every transfer is cut into chunks of at most
 * {@link #CHUNK_BYTES}, so the buffers in flight stay bounded. Each reduced block is summed in one fixed
 * order along the ring and then copied to all ranks, so every rank gets bit-identical results on every run.
 *
 * <p>Messages carry a 64-bit tag: the group id in the high half (0 for the world), the operation or user
 * tag in the low half; per (source, tag) they arrive in send order, which is what matches them up.
 */
final class RingCommunicator implements Communicator {
    /** Largest message payload: the most a transport carries in one message. */
    static final int CHUNK_BYTES = Transport.MAX_PAYLOAD_BYTES;

    private static final int MAX_USER_TAG = 1 << 30;
    private static final int TAG_ALL_REDUCE = MAX_USER_TAG + 1;
    private static final int TAG_REDUCE_SCATTER = MAX_USER_TAG + 2;
    private static final int TAG_ALL_GATHER = MAX_USER_TAG + 3;
    private static final int TAG_BROADCAST = MAX_USER_TAG + 4;
    private static final int TAG_BARRIER = MAX_USER_TAG + 5;

    private final Transport transport;
    private final int[] members;
    private final int rank;
    private final int groupId;
    private final Duration timeout;
    private final boolean ownsTransport;
    private long bytesSent;

    RingCommunicator(Transport transport, Duration timeout) {
        this(transport, identity(transport.worldSize()), transport.worldRank(), 0, timeout, true);
    }

    private RingCommunicator(Transport transport, int[] members, int rank, int groupId, Duration timeout,
                             boolean ownsTransport) {
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, got " + timeout);
        }
        this.transport = transport;
        this.members = members;
        this.rank = rank;
        this.groupId = groupId;
        this.timeout = timeout;
        this.ownsTransport = ownsTransport;
    }

    private static int[] identity(int n) {
        int[] r = new int[n];
        Arrays.setAll(r, i -> i);
        return r;
    }

    @Override public int rank() { return rank; }
    @Override public int size() { return members.length; }
    @Override public Duration timeout() { return timeout; }
    @Override public long bytesSent() { return bytesSent; }

    // ---------------------------------------------------------------- collectives

    @Override
    public void allReduce(INDArray inOut, ReduceOp op) {
        String name = "allReduce";
        Elements.requireReducible(inOut.dataType(), name);
        ByteBuffer buf = Elements.view(inOut, name);
        int n = size();
        if (n == 1) {
            return;
        }
        int width = inOut.dataType().width();
        int[][] blocks = blocks(inOut.length(), n, width);
        ringReduceScatter(name, TAG_ALL_REDUCE, inOut.dataType(), op, buf, blocks, buf, blocks[0][rank]);
        ringAllGather(name, TAG_ALL_REDUCE, buf, blocks);
    }

    @Override
    public void reduceScatter(INDArray in, INDArray outShard, ReduceOp op) {
        String name = "reduceScatter";
        Elements.requireReducible(in.dataType(), name);
        int n = size();
        GroupArgs.checkReduceScatter(name, in, outShard, n);
        ByteBuffer src = Elements.view(in, name);
        ByteBuffer dst = Elements.view(outShard, name);
        if (n == 1) {
            Elements.write(dst, 0, src);
            return;
        }
        int[][] blocks = blocks(in.length(), n, in.dataType().width());
        ringReduceScatter(name, TAG_REDUCE_SCATTER, in.dataType(), op, src, blocks, dst, 0);
    }

    @Override
    public void allGather(INDArray shard, INDArray out) {
        String name = "allGather";
        int n = size();
        GroupArgs.checkAllGather(name, shard, out, n);
        ByteBuffer buf = Elements.view(out, name);
        int[][] blocks = blocks(out.length(), n, out.dataType().width());
        Elements.write(buf, blocks[0][rank], Elements.view(shard, name));
        if (n > 1) {
            ringAllGather(name, TAG_ALL_GATHER, buf, blocks);
        }
    }

    @Override
    public void broadcast(INDArray inOut, int root) {
        String name = "broadcast";
        int n = size();
        checkRank(name, "root", root);
        ByteBuffer buf = Elements.view(inOut, name);
        if (n == 1) {
            return;
        }
        int pos = Math.floorMod(rank - root, n);
        int prev = Math.floorMod(rank - 1, n);
        int next = Math.floorMod(rank + 1, n);
        int total = buf.limit();
        int chunk = chunkBytes(inOut.dataType().width());
        int chunks = Math.max(1, (total + chunk - 1) / chunk);
        for (int c = 0; c < chunks; c++) {
            int from = c * chunk;
            int len = Math.min(chunk, total - from);
            if (pos == 0) {
                sendTo(name, next, TAG_BROADCAST, Elements.copy(buf, from, len));
            } else {
                ByteBuffer m = recvFrom(name, prev, TAG_BROADCAST, len);
                Elements.write(buf, from, m);
                if (pos < n - 1) {
                    sendTo(name, next, TAG_BROADCAST, m);
                }
            }
        }
    }

    @Override
    public void barrier() {
        int n = size();
        int left = Math.floorMod(rank - 1, n);
        int right = Math.floorMod(rank + 1, n);
        // after n-1 ring steps every rank has (transitively) heard from every other one
        for (int s = 0; s < n - 1; s++) {
            sendTo("barrier", right, TAG_BARRIER, ByteBuffer.allocate(0));
            recvFrom("barrier", left, TAG_BARRIER, 0);
        }
    }

    // ---------------------------------------------------------------- point to point

    @Override
    public void send(INDArray array, int dst, int tag) {
        String name = "send";
        checkRank(name, "destination", dst);
        checkTag(tag);
        ByteBuffer buf = Elements.view(array, name);
        int chunk = chunkBytes(array.dataType().width());
        int total = buf.limit();
        int chunks = Math.max(1, (total + chunk - 1) / chunk);
        for (int c = 0; c < chunks; c++) {
            int from = c * chunk;
            sendTo(name, dst, tag, Elements.copy(buf, from, Math.min(chunk, total - from)));
        }
    }

    @Override
    public void recv(INDArray into, int src, int tag) {
        String name = "recv";
        checkRank(name, "source", src);
        checkTag(tag);
        ByteBuffer buf = Elements.view(into, name);
        int chunk = chunkBytes(into.dataType().width());
        int total = buf.limit();
        int chunks = Math.max(1, (total + chunk - 1) / chunk);
        for (int c = 0; c < chunks; c++) {
            int from = c * chunk;
            Elements.write(buf, from, recvFrom(name + " (tag " + tag + ")", src, tag, Math.min(chunk, total - from)));
        }
    }

    // ---------------------------------------------------------------- groups

    @Override
    public Communicator subGroup(int[] ranks) {
        GroupArgs.SubGroup group = GroupArgs.subGroup(ranks, members, rank);
        if (group == null) {
            return null;
        }
        int id = Arrays.hashCode(group.world()) * 31 + groupId;
        if (id == 0) {
            id = 1;
        }
        return new RingCommunicator(transport, group.world(), group.mine(), id, timeout, false);
    }

    @Override
    public void close() {
        if (ownsTransport) {
            transport.close();
        }
    }

    @Override
    public String toString() {
        return describe(rank) + " of " + size();
    }

    // ---------------------------------------------------------------- ring algorithms

    /** Byte offsets [0][b] and lengths [1][b] of the n nearly equal blocks of an array of {@code length} elements. */
    private static int[][] blocks(long length, int n, int width) {
        int[][] b = new int[2][n];
        for (int i = 0; i < n; i++) {
            long s = length * i / n;
            long e = length * (i + 1) / n;
            b[0][i] = (int) (s * width);
            b[1][i] = (int) ((e - s) * width);
        }
        return b;
    }

    private static int chunkBytes(int width) {
        return CHUNK_BYTES / width * width;
    }

    private static int chunkCount(int[][] blocks, int chunk) {
        int max = Arrays.stream(blocks[1]).max().orElse(0);
        return Math.max(1, (max + chunk - 1) / chunk);
    }

    /**
     * Ring reduce-scatter: in step s rank r receives the partial result of block r−s−2 from its left
     * neighbour, adds its own contribution and passes it right; after n−1 steps it holds block r, which it
     * writes into {@code dst} at byte {@code dstAt}. {@code src} is only read.
     */
    private void ringReduceScatter(String name, int tag, DataType type, ReduceOp op, ByteBuffer src,
                                   int[][] blocks, ByteBuffer dst, int dstAt) {
        int n = size();
        int left = Math.floorMod(rank - 1, n);
        int right = Math.floorMod(rank + 1, n);
        int chunk = chunkBytes(type.width());
        int chunks = chunkCount(blocks, chunk);
        for (int c = 0; c < chunks; c++) {
            int first = Math.floorMod(rank - 1, n);
            sendTo(name, right, tag, Elements.copy(src, blocks[0][first] + chunkFrom(blocks, first, c, chunk),
                    chunkLen(blocks, first, c, chunk)));
            for (int s = 0; s < n - 1; s++) {
                int b = Math.floorMod(rank - s - 2, n);
                int from = chunkFrom(blocks, b, c, chunk);
                ByteBuffer m = recvFrom(name, left, tag, chunkLen(blocks, b, c, chunk));
                Elements.accumulate(type, op, m, src, blocks[0][b] + from);
                if (s < n - 2) {
                    sendTo(name, right, tag, m);
                } else {
                    if (op == ReduceOp.AVG) {
                        Elements.divide(type, m, n);
                    }
                    Elements.write(dst, dstAt + from, m);
                }
            }
        }
    }

    /** Ring all-gather in place: rank r starts with block r of {@code buf}; in step s it receives block r−s−1. */
    private void ringAllGather(String name, int tag, ByteBuffer buf, int[][] blocks) {
        int n = size();
        int left = Math.floorMod(rank - 1, n);
        int right = Math.floorMod(rank + 1, n);
        int chunk = CHUNK_BYTES / 8 * 8;
        int chunks = chunkCount(blocks, chunk);
        for (int c = 0; c < chunks; c++) {
            sendTo(name, right, tag, Elements.copy(buf, blocks[0][rank] + chunkFrom(blocks, rank, c, chunk),
                    chunkLen(blocks, rank, c, chunk)));
            for (int s = 0; s < n - 1; s++) {
                int b = Math.floorMod(rank - s - 1, n);
                ByteBuffer m = recvFrom(name, left, tag, chunkLen(blocks, b, c, chunk));
                Elements.write(buf, blocks[0][b] + chunkFrom(blocks, b, c, chunk), m);
                if (s < n - 2) {
                    sendTo(name, right, tag, m);
                }
            }
        }
    }

    private static int chunkFrom(int[][] blocks, int b, int c, int chunk) {
        return (int) Math.min((long) c * chunk, blocks[1][b]);
    }

    private static int chunkLen(int[][] blocks, int b, int c, int chunk) {
        int from = chunkFrom(blocks, b, c, chunk);
        return Math.min(chunk, blocks[1][b] - from);
    }

    // ---------------------------------------------------------------- messaging

    private long fullTag(int tag) {
        return ((long) groupId << 32) | (tag & 0xffffffffL);
    }

    private void sendTo(String op, int peer, int tag, ByteBuffer payload) {
        bytesSent += payload.limit();
        try {
            transport.send(members[peer], fullTag(tag), payload);
        } catch (TransportException e) {
            throw new CollieException(op + ": " + describe(rank) + " could not send to " + describe(peer) + ": "
                    + e.getMessage(), e);
        }
    }

    private ByteBuffer recvFrom(String op, int peer, int tag, int expectedBytes) {
        ByteBuffer m;
        try {
            m = transport.recv(members[peer], fullTag(tag), timeout);
        } catch (TransportException e) {
            throw new CollieException(op + ": " + describe(rank) + " was waiting for " + describe(peer) + ": "
                    + e.getMessage(), e);
        }
        if (m == null) {
            throw new CollieException(op + ": " + describe(rank) + " of " + size() + " received nothing from "
                    + describe(peer) + " within " + timeout.toMillis() + " ms (timeout); did that rank fail,"
                    + " or call a different operation?");
        }
        if (m.limit() != expectedBytes) {
            throw new CollieException(op + ": " + describe(rank) + " expected " + expectedBytes + " bytes from "
                    + describe(peer) + " but got " + m.limit() + "; do all ranks pass arrays of the same"
                    + " length and data type?");
        }
        return m;
    }

    private String describe(int groupRank) {
        int w = members[groupRank];
        return groupId == 0 || w == groupRank ? "rank " + groupRank : "rank " + groupRank + " (world rank " + w + ")";
    }

    private void checkRank(String op, String what, int r) {
        GroupArgs.checkRank(op, what, r, size());
    }

    private static void checkTag(int tag) {
        if (tag < 0 || tag >= MAX_USER_TAG) {
            throw new IllegalArgumentException("tag " + tag + " is outside [0, 2^30)");
        }
    }
}
