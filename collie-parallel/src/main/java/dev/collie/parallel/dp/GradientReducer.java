package dev.collie.parallel.dp;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import dev.collie.core.nn.Parameter;
import dev.collie.core.train.Distributed;
import dev.collie.core.train.GradientRoute;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Deque;
import java.util.EnumMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;

/**
 * The one bucketed gradient reducer of data parallelism, ZeRO-0 to 3: the reduction on every trainable parameter's
 * gradient route for one rank. Who keeps each reduced gradient is an {@link Ownership}: every rank (plain data
 * parallel, ZeRO-1), or one owner per parameter with the largest split into row blocks (ZeRO-2/3).
 *
 * <p>Parameters are grouped into buckets of about {@code bucketBytes} (a larger parameter alone), at first in
 * reverse registration order (the ownership plan balances owners within each of these); after the first step the
 * buckets are rebuilt in the order the gradients actually completed (rank 0's, shared with all), as DDP does; owners
 * stay. When a gradient is complete ({@link #launch}) it is copied into its bucket's flat buffer and the parameter
 * lets go of it at once: a rank that does not keep it frees its gradient buffer ({@link Parameter#releaseGrad()}),
 * a keeper keeps its (empty) buffer for the result. A full bucket is reduced on the rank's {@link CommThread},
 * buckets strictly in order (so the ranks' sequences match whichever worker threads fire the hooks), by one of two
 * strategies chosen per bucket:
 * <ul>
 * <li>a <em>reduce-scatter</em> when the owners' sections of the bucket are balanced enough: the bucket is laid out
 *     as one padded section per rank (that rank's parameters, back to back), and each rank receives only its own
 *     section, averaged, {@code (n−1)·section} elements sent per rank; chosen when {@code n·section < 2·S} for a
 *     bucket of {@code S} elements, i.e. when that sends less than</li>
 * <li>an <em>all-reduce</em> of the bucket, {@code 2(n−1)/n·S} per rank (always when every rank keeps every
 *     gradient, and for a bucket of one whole parameter, whose owner's section is the whole bucket; a bucket of one
 *     split parameter is reduce-scattered).</li>
 * </ul>
 * The keeper's slice is written into its parameter's (or row block's) gradient ({@link Parameter#setGrad}) on the
 * communication thread. Flat buffers come from a pool reused across buckets and steps: a hook that needs a buffer
 * while none is free waits for a launched bucket to give one back, so the pool holds about as many buffers as
 * buckets are in flight (one to three here), not one persistent buffer per bucket.
 *
 * <p>Fused-backward optimizers (LOMO, AdaLomo) take the other door, {@link #reduceNow}: each gradient all-reduced at
 * once, in hook order (the same on every rank: one backward stream per rank); the route then updates or frees it.
 *
 * <p>Gradient accumulation: the hook fires on the step's last micro-batch only, so during an accumulating step
 * every rank holds a local gradient buffer for every parameter (freed on non-owners when the hook fires). Between
 * steps non-owners hold none.
 *
 * <p>Why one class of ~670 lines: the bucket layout, the buffer pool and the in-order launch are one state machine
 * under one lock (a buffer comes back only from a launched bucket, buckets launch strictly in order, the rebuild
 * replaces layout and pool together), and the traffic and memory figures read that same layout.
 */
final class GradientReducer implements Distributed.Reduction, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(GradientReducer.class);

    private final Ownership plan;
    private final String label;
    private final CommThread thread;
    private final Communicator comm;
    private final int rank;
    private final int n;
    private final long bucketBytes;
    /** The order gradients completed in during the first step, until the buckets are rebuilt. */
    private final List<Parameter> observed = new ArrayList<>();
    private boolean rebuilt;
    private final List<Bucket> buckets = new ArrayList<>();
    private final Map<Parameter, Slot> slots = new IdentityHashMap<>();

    /** Free flat buffers per type; each holds {@link #capacity} elements of that type. */
    private final Map<DataType, Deque<INDArray>> free = new EnumMap<>(DataType.class);
    private final Map<DataType, Long> capacity = new EnumMap<>(DataType.class);
    private final List<INDArray> pool = new ArrayList<>();
    /** Reduce-scatter outputs, used by the communication thread only. */
    private final Map<DataType, INDArray> shardOut = new EnumMap<>(DataType.class);
    private volatile long poolBytes;
    private volatile long shardBytes;

    private final Object lock = new Object();
    private final List<Future<?>> inFlight = new ArrayList<>();
    private int nextToLaunch;
    /** Launched buckets whose buffer is not back in the pool yet. */
    private int launchedHolding;

    /**
     * Elements {@code [from, from + length)} of a parameter's flat gradient at {@code offset} of its bucket, reduced
     * for rank {@code owner}; {@code target} receives them on that rank (the parameter or its row block), null on
     * the others.
     */
    private record Piece(Parameter target, long from, long length, int owner, long offset) { }

    /** One parameter's place in its bucket's flat buffer: one piece, or one per rank for a split parameter. */
    private record Slot(String name, Parameter p, Bucket bucket, int index, List<Piece> pieces, boolean split)
            implements GradientBucket.Named { }

    /** Parameters whose gradients are reduced together. */
    private static final class Bucket extends GradientBucket<Slot> {
        final List<Parameter> params = new ArrayList<>();
        boolean scatter;
        /** Padded elements per rank (reduce-scatter only). */
        long section;
        /** Elements of each rank's section in use (reduce-scatter only). */
        long[] used;
        long length;
        long bytes;
        INDArray poolBuffer;
        INDArray flat;

        Bucket(int index, DataType dtype) {
            super(index, dtype);
        }
    }

    /**
     * Reduces the gradients of {@code plan}'s parameters over {@code comm} (this rank is {@code plan}'s) after
     * checking that every rank has the same names, shapes and types.
     *
     * @throws CollieException when the ranks' parameters differ or a peer does not answer
     */
    GradientReducer(Ownership plan, Communicator comm, long bucketBytes) {
        this.plan = plan;
        this.label = plan.label;
        this.comm = comm;
        this.rank = comm.rank();
        this.n = comm.size();
        this.bucketBytes = bucketBytes;
        this.thread = new CommThread(comm, label);
        try {
            checkSameParameters();
        } catch (RuntimeException e) {
            thread.close();
            throw e;
        }
        buildBuckets(plan.groups);
    }

    private void buildBuckets(List<List<Parameter>> groups) {
        buckets.clear();
        slots.clear();
        capacity.clear();
        for (List<Parameter> g : groups) {
            Bucket b = new Bucket(buckets.size(), g.get(0).dtype());
            b.params.addAll(g);
            buckets.add(b);
            layOut(b);
        }
    }

    /**
     * After the first step: buckets in the order the gradients actually completed (rank 0's, shared with every
     * rank), as DDP rebuilds its buckets. Reverse registration order is only a guess, and a bucket holding a
     * parameter that completes late (a block's input norm: registered after its MLP, used before its attention)
     * holds back every later bucket and their buffers. Owners stay as they are (the optimizers hold them).
     */
    private void rebuildInObservedOrder() {
        List<Parameter> order = plan.parameters();
        if (order.isEmpty()) {
            return;     // nothing to reduce on any rank of the group (a pipeline stage without trainable weights)
        }
        long[] idx = new long[order.size()];
        Map<Parameter, Integer> position = new IdentityHashMap<>();
        for (int i = 0; i < order.size(); i++) {
            position.put(order.get(i), i);
        }
        for (int i = 0; i < observed.size(); i++) {
            idx[i] = position.get(observed.get(i));
        }
        INDArray shared = Nd4j.createFromArray(idx);
        thread.call(() -> {
            comm.broadcast(shared, 0);
            return null;
        }, "sharing the gradient completion order");
        List<Parameter> completion = new ArrayList<>();
        for (long i : shared.toLongVector()) {
            completion.add(order.get((int) i));
        }
        buildBuckets(Ownership.group(completion, bucketBytes));
        for (INDArray a : pool) {
            a.close();
        }
        pool.clear();
        free.clear();
        poolBytes = 0;
        thread.call(() -> {
            shardOut.values().forEach(INDArray::close);
            shardOut.clear();
            shardBytes = 0;
            return null;
        }, "dropping the reduce-scatter buffers");
    }

    private void layOut(Bucket b) {
        long[] used = new long[n];
        long total = 0;
        boolean everyRank = plan.replicated();
        for (Parameter p : b.params) {
            RowBlocks rb = plan.split(p);
            if (rb != null) {
                for (int r = 0; r < n; r++) {
                    used[r] += rb.elements(r);
                }
            } else if (!everyRank) {
                used[plan.owner(p)] += p.numel();
            }
            total += p.numel();
        }
        long section = Arrays.stream(used).max().orElse(0);
        b.scatter = !everyRank && n > 1 && (long) n * section < 2 * total;
        long[] cursor = new long[n];
        if (b.scatter) {
            b.section = section;
            b.used = used;
            b.length = (long) n * section;
            for (int r = 0; r < n; r++) {
                cursor[r] = r * section;
            }
        } else {
            b.length = total;
        }
        long next = 0;
        for (int i = 0; i < b.params.size(); i++) {
            Parameter p = b.params.get(i);
            RowBlocks rb = plan.split(p);
            List<Piece> pieces = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                int o = rb != null ? r : everyRank ? rank : plan.owner(p);
                if (rb == null && r != o) {
                    continue;
                }
                long length = rb != null ? rb.elements(r) : p.numel();
                long offset;
                if (b.scatter) {
                    offset = cursor[o];
                    cursor[o] += length;
                } else {
                    offset = next;
                    next += length;
                }
                Parameter target = o != rank ? null : rb != null ? rb.block : p;
                pieces.add(new Piece(target, rb != null ? rb.from(r) : 0, length, o, offset));
            }
            Slot s = new Slot(plan.name(p), p, b, i, Collections.unmodifiableList(pieces), rb != null);
            b.slots.add(s);
            slots.put(p, s);
        }
        b.bytes = b.length * b.dtype.width();
        b.ready = new boolean[b.slots.size()];
        b.reset();
        capacity.merge(b.dtype, b.length, Math::max);
    }

    // ------------------------------------------------------------------ reporting

    Ownership plan() {
        return plan;
    }

    CommThread thread() {
        return thread;
    }

    Communicator comm() {
        return comm;
    }

    int bucketCount() {
        return buckets.size();
    }

    /** Buckets reduced with a reduce-scatter (the others with an all-reduce). */
    int scatteredBucketCount() {
        return (int) buckets.stream().filter(b -> b.scatter).count();
    }

    /**
     * Bytes this rank sends per step to reduce the gradients on the bucketed path (ring collectives: a
     * reduce-scatter sends every block of the bucket but this rank's own; an all-reduce is a reduce-scatter
     * and an all-gather, which sends every block but the next rank's).
     */
    long gradientBytesSentPerStep() {
        long sent = 0;
        for (Bucket b : buckets) {
            if (n == 1) {
                continue;
            }
            int w = b.dtype.width();
            sent += (b.length - blockLength(b.length, rank)) * w;
            if (!b.scatter) {
                sent += (b.length - blockLength(b.length, rank + 1)) * w;
            }
        }
        return sent;
    }

    /**
     * Bytes this rank sends to broadcast every parameter from its owner (a ring: all but the last rank send it
     * all) and to all-gather the row blocks of split ones ({@link RowBlocks#gatherBytesSent}).
     */
    long broadcastBytesSent(List<Parameter> params) {
        long sent = 0;
        for (Parameter p : params) {
            RowBlocks rb = plan.split(p);
            if (rb != null) {
                sent += rb.gatherBytesSent(rank);
            } else if (n > 1 && Math.floorMod(rank - plan.owner(p), n) < n - 1) {
                sent += p.numel() * p.dtype().width();
            }
        }
        return sent;
    }

    /** Elements of block {@code block} (mod n) when {@code length} elements are cut into n nearly equal blocks. */
    private long blockLength(long length, int block) {
        int b = Math.floorMod(block, n);
        return length * (b + 1) / n - length * b / n;
    }

    /** Communication buffers held now: the pool of flat bucket buffers and the reduce-scatter outputs. */
    long bufferBytes() {
        return poolBytes + shardBytes;
    }

    /**
     * Values and gradients of the trainable parameters held now, with this rank's row blocks (their gradients;
     * their values too when they have arrays of their own, under ZeRO-3), and the communication buffers.
     */
    RankMemory memory() {
        RankMemory whole = RankMemory.of(plan.parameters(), bufferBytes());
        long data = whole.parameterBytes();
        long grad = whole.gradientBytes();
        for (RowBlocks rb : plan.splits()) {
            data += rb.ownStorage ? rb.block.dataBytes() : 0;
            grad += rb.block.gradientBufferBytes();
        }
        return new RankMemory(data, grad, whole.bufferBytes());
    }

    // ------------------------------------------------------------------ the bucketed door

    /**
     * Copies {@code g} into its bucket (acquiring a buffer for it) and launches every full bucket in order; the
     * parameter lets go of its gradient (see the class comment).
     */
    @Override
    public boolean launch(Parameter p, INDArray grad) {
        Slot s = slots.get(p);
        Bucket b = s.bucket();
        INDArray flat;
        synchronized (lock) {
            if (b.ready[s.index()]) {
                throw new IllegalStateException(label + ": gradient of " + s.name() + " completed twice in one step");
            }
            if (!rebuilt) {
                observed.add(p);
            }
            if (b.flat == null) {
                acquire(b);
            }
            flat = b.flat;
        }
        INDArray g = grad.reshape(p.numel());
        // copy now: the gradient may be the caller's array, gone after this call
        for (Piece piece : s.pieces()) {
            INDArray part = piece.length() == p.numel() ? g
                    : g.get(NDArrayIndex.interval(piece.from(), piece.from() + piece.length()));
            span(flat, piece.offset(), piece.offset() + piece.length()).assign(part);
        }
        if (!plan.owns(p)) {
            // a non-owner holds no gradient for this parameter between steps, nor does any rank for a split
            // parameter: each block's reduced gradient goes into its block parameter (a keeper keeps its buffer:
            // the reduced gradient is written into it)
            p.releaseGrad();
        }
        synchronized (lock) {
            b.ready[s.index()] = true;
            b.pending--;
            while (nextToLaunch < buckets.size() && buckets.get(nextToLaunch).pending == 0) {
                Bucket next = buckets.get(nextToLaunch++);
                launchedHolding++;
                inFlight.add(thread.submit(() -> reduce(next), () -> giveBack(next)));
            }
        }
        return false;
    }

    /**
     * A pool buffer for {@code b} (under the lock); padding between owner sections is zeroed. When none is free
     * and a launched bucket still holds one, waits for it (back-pressure: backward does not run further ahead
     * of the communication than the pool allows); when every held buffer belongs to a bucket still being
     * filled, no buffer would ever come back, so the pool grows. Launched buckets complete once every rank has
     * launched them, and a rank that has not cannot be waiting here (it has nothing launched in flight beyond
     * them), so the wait always ends.
     */
    private void acquire(Bucket b) {
        Deque<INDArray> q = free.computeIfAbsent(b.dtype, t -> new ArrayDeque<>());
        long deadline = System.nanoTime() + thread.waitMs() * 1_000_000L;
        INDArray buf;
        while ((buf = q.poll()) == null && launchedHolding > 0) {
            long left = (deadline - System.nanoTime()) / 1_000_000L;
            if (left <= 0) {
                throw new CollieException(label + " rank " + rank + ": no gradient bucket buffer came back within "
                        + thread.waitMs() + " ms (a peer rank is stuck or gone)");
            }
            try {
                lock.wait(left);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CollieException(label + " rank " + rank + ": interrupted while waiting for a bucket buffer", e);
            }
        }
        if (buf == null) {
            long cap = capacity.get(b.dtype);
            try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                buf = Nd4j.createUninitialized(b.dtype, cap);
            }
            pool.add(buf);
            poolBytes += cap * b.dtype.width();
        }
        b.poolBuffer = buf;
        b.flat = span(buf, 0, b.length);
        if (b.scatter) {
            for (int r = 0; r < n; r++) {
                if (b.used[r] < b.section) {
                    span(b.flat, r * b.section + b.used[r], (r + 1) * b.section).assign(0);
                }
            }
        }
    }

    /** On the communication thread: averages bucket {@code b} and hands this rank's parameters their gradients. */
    private void reduce(Bucket b) {
        if (b.scatter) {
            INDArray out = shardOut(b);
            comm.reduceScatter(b.flat, out, ReduceOp.AVG);
            long base = (long) rank * b.section;
            for (Slot s : b.slots) {
                for (Piece piece : s.pieces()) {
                    if (piece.target() != null) {
                        long at = piece.offset() - base;
                        piece.target().setGrad(span(out, at, at + piece.length()));
                    }
                }
            }
        } else {
            comm.allReduce(b.flat, ReduceOp.AVG);
            for (Slot s : b.slots) {
                for (Piece piece : s.pieces()) {
                    if (piece.target() != null) {
                        piece.target().setGrad(span(b.flat, piece.offset(), piece.offset() + piece.length()));
                    }
                }
            }
        }
    }

    /** Returns a launched bucket's buffer to the pool (reduced or not). */
    private void giveBack(Bucket b) {
        synchronized (lock) {
            free.get(b.dtype).push(b.poolBuffer);
            b.poolBuffer = null;
            b.flat = null;
            launchedHolding--;
            lock.notifyAll();
        }
    }

    private INDArray shardOut(Bucket b) {
        INDArray out = shardOut.get(b.dtype);
        if (out == null) {
            long max = 0;
            for (Bucket c : buckets) {
                if (c.scatter && c.dtype == b.dtype) {
                    max = Math.max(max, c.section);
                }
            }
            try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                out = Nd4j.createUninitialized(b.dtype, max);
            }
            shardOut.put(b.dtype, out);
            shardBytes += max * b.dtype.width();
        }
        return span(out, 0, b.section);
    }

    /**
     * Waits until every bucket of the step is reduced: afterwards each owned parameter holds its averaged
     * gradient and the others none.
     *
     * @throws CollieException naming the parameters that got no gradient this step, or when a reduction failed
     */
    void finish() {
        List<Future<?>> launched;
        List<String> missing;
        synchronized (lock) {
            missing = GradientBucket.missing(buckets);
            launched = new ArrayList<>(inFlight);
            inFlight.clear();
        }
        try {
            if (!missing.isEmpty()) {
                throw GradientBucket.noGradient(label + " rank " + rank, missing, "reductions");
            }
            for (int k = 0; k < launched.size(); k++) {
                thread.await(launched.get(k), "reducing gradient bucket " + k);
            }
            if (!rebuilt) {
                synchronized (lock) {
                    rebuildInObservedOrder();
                    rebuilt = true;
                    observed.clear();
                }
            }
        } finally {
            synchronized (lock) {
                nextToLaunch = 0;
                for (Bucket b : buckets) {
                    b.reset();
                }
            }
        }
    }

    // ------------------------------------------------------------------ the immediate door (fused optimizers)

    /**
     * Averages {@code p}'s gradient {@code g} over the ranks now, in place (fused-backward optimizers); every rank
     * calls it for the same parameters in the same order.
     */
    @Override
    public void reduceNow(Parameter p, INDArray g) {
        INDArray target = contiguous(g) ? g : g.dup('c');
        thread.call(() -> {
            comm.allReduce(target, ReduceOp.AVG);
            return null;
        }, "averaging the gradient of " + plan.name(p));
        if (target != g) {
            g.assign(target);
        }
    }

    /**
     * Elements {@code [from, to)} of the flat (rank-1) buffer {@code flat} as a contiguous c-order vector:
     * ND4J labels interval views of vectors 'f', which the communicators refuse.
     */
    private static INDArray span(INDArray flat, long from, long to) {
        if (from == 0 && to == flat.length()) {
            return flat;
        }
        return Nd4j.create(flat.data(), new long[] {to - from}, new long[] {1}, flat.offset() + from, 'c', flat.dataType());
    }

    private static boolean contiguous(INDArray a) {
        return a.ordering() == 'c' && Shape.hasDefaultStridesForShape(a);
    }

    // ------------------------------------------------------------------ other collectives

    /**
     * Broadcasts each of {@code params} (resident on its owner) from its owner, in order; a split one's row
     * blocks are all-gathered into its value (ZeRO-2: the blocks view the value's rows, so in place).
     */
    void broadcastFromOwners(List<Parameter> params) {
        thread.call(() -> {
            for (Parameter p : params) {
                RowBlocks rb = plan.split(p);
                if (rb != null) {
                    rb.gather(comm, p.data(), rb.block.data());
                } else {
                    comm.broadcast(p.data(), plan.owner(p));
                }
            }
            return null;
        }, "broadcasting the updated parameters from their owners");
    }

    /** Broadcasts {@code a} from {@code root} to every rank, in place. */
    void broadcast(INDArray a, int root) {
        thread.call(() -> {
            comm.broadcast(a, root);
            return null;
        }, "broadcasting from rank " + root);
    }

    /** Bytes of the gradients the buckets hold per step (padding of reduce-scatter sections included). */
    long bucketedBytes() {
        long sum = 0;
        for (Bucket b : buckets) {
            sum += b.bytes;
        }
        return sum;
    }

    double average(double value) {
        INDArray a = Nd4j.createFromArray(new double[] {value});
        thread.call(() -> {
            comm.allReduce(a, ReduceOp.AVG);
            return null;
        }, "averaging a value over the ranks");
        return a.getDouble(0);
    }

    /** Whether {@code flag} is true on any of the ranks (a collective). */
    boolean anyRank(boolean flag) {
        INDArray a = Nd4j.createFromArray(new double[] {flag ? 1 : 0});
        thread.call(() -> {
            comm.allReduce(a, ReduceOp.MAX);
            return null;
        }, "agreeing on a flag over the ranks");
        return a.getDouble(0) > 0;
    }

    /**
     * The L2 norm of the whole model's averaged gradient, each rank contributing its owned parameters and row
     * blocks (a collective: every rank must call it). For clipping under ZeRO-2/3, where no rank holds every
     * gradient.
     */
    double globalGradientNorm() {
        double sq = 0;
        for (Parameter p : plan.ownedParameters().values()) {
            INDArray g = p.grad();
            if (g != null) {
                double v = g.norm2Number().doubleValue();
                sq += v * v;
            }
        }
        return Math.sqrt(Math.max(0, average(sq) * n));
    }

    /** All-gathers a digest of (name, shape, type) of every trainable parameter and compares. */
    private void checkSameParameters() {
        long[] mine = ParameterDigest.of(plan.parameters().stream().map(p -> Map.entry(plan.name(p), p)).toList());
        INDArray shard = Nd4j.createFromArray(mine);
        INDArray all = Nd4j.create(DataType.INT64, (long) n * mine.length);
        thread.call(() -> {
            comm.allGather(shard, all);
            return null;
        }, "checking that all ranks have the same parameters");
        String bad = ParameterDigest.differing(mine, all.toLongVector(), n);
        if (!bad.isEmpty()) {
            throw new CollieException(label + ": rank " + rank + " has " + mine[0] + " trainable parameters whose"
                    + " names, shapes or types differ from those of " + bad + "; every data-parallel rank must hold"
                    + " the same model replica");
        }
    }

    /** Takes the parameters' routes back to plain (keep), stops the communication thread and frees the buffers. */
    @Override
    public void close() {
        GradientRoute.detach(plan.parameters());
        if (!thread.stop()) {
            // a collective still runs on these buffers: leaking them beats freeing memory it writes to
            LOG.warn("rank {}: the communication thread did"
                    + " not stop within {} ms; its gradient buffers are left allocated", rank, thread.waitMs());
            return;
        }
        synchronized (lock) {
            for (INDArray a : pool) {
                a.close();
            }
            pool.clear();
            free.clear();
            poolBytes = 0;
        }
        shardOut.values().forEach(INDArray::close);
        shardOut.clear();
        shardBytes = 0;
    }
}
