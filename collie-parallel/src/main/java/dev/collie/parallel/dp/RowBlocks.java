package dev.collie.parallel.dp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;

/**
 * A trainable parameter that ZeRO-2/3 splits into one block of rows (dimension 0) per data-parallel rank
 * instead of giving it whole to one owner: rank r owns rows {@code [R·r/n, R·(r+1)/n)} (equal blocks when
 * n divides R, otherwise blocks of ⌊R/n⌋ and ⌈R/n⌉ rows). A block is contiguous in the parameter's c-order
 * layout, so its gradient is one span of the flat gradient and its value one span of the value.
 *
 * <p>Rank r's optimizer gets {@link #block}, a {@link Parameter} over its rows under the whole parameter's
 * name: under ZeRO-2 a view of the whole value's rows (the optimizer updates them in place), under ZeRO-3
 * an array of its own, the master copy of those rows. For element-wise update rules (AdamW, Lion, Adan,
 * SophiaG, SGD) the update of a row block is the row block of the update, so training is unchanged.
 */
final class RowBlocks {
    final String name;
    final Parameter full;
    final int n;
    private final long rowLength;
    /** Row bounds: block r is rows [start[r], start[r+1]). */
    private final long[] start;
    /** This rank's block. */
    final Parameter block;
    /** Whether {@link #block} has its own array (ZeRO-3) instead of viewing the whole value's rows (ZeRO-2). */
    final boolean ownStorage;

    /** Splits {@code full} (resident, c-contiguous, at least n rows: {@link #splittable}) for {@code rank} of n. */
    RowBlocks(String name, Parameter full, int n, int rank, boolean ownStorage) {
        this.name = name;
        this.full = full;
        this.n = n;
        long[] shape = full.shape();
        long rows = shape[0];
        this.rowLength = full.numel() / rows;
        this.start = new long[n + 1];
        for (int r = 0; r <= n; r++) {
            start[r] = rows * r / n;
        }
        this.ownStorage = ownStorage;
        INDArray mine = rows(full.data(), rank);
        if (ownStorage) {
            try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                mine = mine.dup('c');
            }
        }
        this.block = new Parameter(mine);
    }

    /** Whether {@code p} can be split into row blocks over n ranks: resident, c-contiguous, at least n rows. */
    static boolean splittable(Parameter p, int n) {
        long[] shape = p.shape();
        if (n < 2 || shape.length == 0 || shape[0] < n || !p.isResident()) {
            return false;
        }
        INDArray d = p.data();
        return d.ordering() == 'c' && Shape.hasDefaultStridesForShape(d);
    }

    /** Elements of block {@code r} per rank for a parameter of {@code numel} elements and {@code rows} rows. */
    static long[] blockElements(long[] shape, long numel, int n) {
        long rows = shape[0];
        long rowLength = numel / rows;
        long[] out = new long[n];
        for (int r = 0; r < n; r++) {
            out[r] = (rows * (r + 1) / n - rows * r / n) * rowLength;
        }
        return out;
    }

    /** Whether every block has the same number of rows (then one all-gather moves them). */
    boolean equal() {
        return start[n] % n == 0;
    }

    /** First element of block {@code r} in the flat (c-order) parameter. */
    long from(int r) {
        return start[r] * rowLength;
    }

    /** Elements of block {@code r}. */
    long elements(int r) {
        return (start[r + 1] - start[r]) * rowLength;
    }

    /** Block {@code r}'s rows of {@code whole} (c-contiguous, shaped like the parameter) as a c-order view. */
    INDArray rows(INDArray whole, int r) {
        long[] shape = whole.shape().clone();       // ND4J hands out its own shape array
        shape[0] = start[r + 1] - start[r];
        return Nd4j.create(whole.data(), shape, Nd4j.getStrides(shape, 'c'), whole.offset() + from(r), 'c',
                whole.dataType());
    }

    /**
     * Puts every rank's block into {@code whole} (a collective; {@code mine} is this rank's block, which may be
     * a view of {@code whole}'s own rows): one all-gather when the blocks are equal, otherwise one broadcast
     * from each block's owner. Either way a rank sends every block but the next rank's.
     */
    void gather(Communicator comm, INDArray whole, INDArray mine) {
        int rank = comm.rank();
        if (equal()) {
            comm.allGather(mine, whole);
            return;
        }
        INDArray own = rows(whole, rank);
        if (!sameSpan(own, mine)) {
            own.assign(mine);
        }
        for (int q = 0; q < n; q++) {
            comm.broadcast(rows(whole, q), q);
        }
    }

    /** Bytes {@link #gather} sends from {@code rank} (all-gather or broadcasts): every block but rank+1's. */
    long gatherBytesSent(int rank) {
        return (full.numel() - elements((rank + 1) % n)) * full.dtype().width();
    }

    private static boolean sameSpan(INDArray a, INDArray b) {
        return a.data() == b.data() && a.offset() == b.offset() && a.length() == b.length();
    }

    @Override
    public String toString() {
        return name + " " + Arrays.toString(full.shape()) + " in " + n + " row blocks";
    }
}
