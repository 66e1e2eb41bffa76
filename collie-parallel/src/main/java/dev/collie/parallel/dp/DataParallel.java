package dev.collie.parallel.dp;

import org.nd4j.linalg.indexing.NDArrayIndex;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import dev.collie.core.nn.Parameter;
import dev.collie.core.train.Distributed;
import dev.collie.core.train.GradientRoute;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Data parallelism (PyTorch DDP's scheme) for one rank: the reduction on every trainable parameter's gradient
 * route ({@link GradientRoute}), so the moment a parameter's gradient is complete for the step it is copied into
 * its bucket's flat buffer; when a bucket is full its buffer is averaged over the ranks by an all-reduce on this
 * rank's communication thread, overlapping the rest of backward. {@link #finishReduction()} waits for every
 * bucket and writes the averaged gradients back into {@code p.grad()}; call it after backward and before
 * clipping or {@code optimizer.step()}.
 *
 * <p>Buckets of about {@code bucketBytes} hold parameters in reverse registration order (roughly the order
 * backward completes them) and are launched strictly in bucket order, so every rank issues the same
 * collectives in the same order whichever thread fires the hooks. A parameter that got no gradient in a
 * step is an error: {@link #finishReduction()} names it (the other ranks then fail at the communicator's timeout).
 *
 * <p>The communicator belongs to the communication thread from construction on; use
 * {@link #averageAcrossRanks} for other collectives of this rank. Fused-backward optimizers (LOMO) get each
 * gradient averaged at once instead ({@link #reduceNow}).
 */
public final class DataParallel implements Distributed, Distributed.Reduction, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DataParallel.class);

    /** Default bucket size: 25 MB, as DDP. */
    public static final long DEFAULT_BUCKET_BYTES = 25L * 1024 * 1024;

    private final Communicator comm;
    private final List<Bucket> buckets = new ArrayList<>();
    private final IdentityHashMap<Parameter, Slot> slots = new IdentityHashMap<>();
    private final ExecutorService commThread;
    private final Map<String, Parameter> params;
    private final Object launchLock = new Object();
    private final List<Future<?>> inFlight = new ArrayList<>();
    private int nextToLaunch;
    private volatile Throwable commFailure;

    /** One parameter's place in a bucket's flat buffer. */
    private record Slot(String name, Parameter p, Bucket bucket, long offset) implements GradientBucket.Named { }

    /** Parameters whose gradients are all-reduced together. */
    private static final class Bucket extends GradientBucket<Slot> {
        INDArray flat;

        Bucket(int index, DataType dtype) {
            super(index, dtype);
        }

        long length() {
            return slots.isEmpty() ? 0 : slots.get(slots.size() - 1).offset() + slots.get(slots.size() - 1).p().numel();
        }
    }

    /** With {@link #DEFAULT_BUCKET_BYTES}. */
    public DataParallel(Map<String, Parameter> params, Communicator comm) {
        this(params, comm, DEFAULT_BUCKET_BYTES);
    }

    /**
     * Attaches to the trainable parameters among {@code params} (in registration order) and checks that every
     * rank of {@code comm} has the same parameter names, shapes and types.
     *
     * @throws CollieException when the ranks' parameters differ or a peer does not answer
     */
    public DataParallel(Map<String, Parameter> params, Communicator comm, long bucketBytes) {
        if (bucketBytes <= 0) {
            throw new IllegalArgumentException("bucketBytes must be positive, got " + bucketBytes);
        }
        this.comm = comm;
        this.params = new LinkedHashMap<>();
        params.forEach((n, p) -> {
            if (p.requiresGrad()) {
                this.params.put(n, p);
            }
        });
        int rank = comm.rank();
        this.commThread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "collie-dp-comm-" + rank);
            t.setDaemon(true);
            return t;
        });
        try {
            checkSameParameters();
        } catch (RuntimeException e) {
            commThread.shutdownNow();
            throw e;
        }
        buildBuckets(bucketBytes);
    }

    private void buildBuckets(long bucketBytes) {
        List<Map.Entry<String, Parameter>> order = new ArrayList<>(params.entrySet());
        Collections.reverse(order);
        Bucket current = null;
        for (Map.Entry<String, Parameter> e : order) {
            Parameter p = e.getValue();
            long bytes = p.numel() * p.dtype().width();
            if (current == null || current.dtype != p.dtype()
                    || (!current.slots.isEmpty() && (current.length() * current.dtype.width() + bytes > bucketBytes))) {
                current = new Bucket(buckets.size(), p.dtype());
                buckets.add(current);
            }
            Slot s = new Slot(e.getKey(), p, current, current.length());
            current.slots.add(s);
            slots.put(p, s);
        }
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            for (Bucket b : buckets) {
                b.flat = Nd4j.createUninitialized(b.dtype, b.length());
                b.ready = new boolean[b.slots.size()];
                b.reset();
            }
        }
    }

    /** All-gathers a digest of (name, shape, type) of every trainable parameter and compares. */
    private void checkSameParameters() {
        long[] mine = ParameterDigest.of(params.entrySet());
        INDArray shard = Nd4j.createFromArray(mine);
        INDArray all = Nd4j.create(DataType.INT64, (long) comm.size() * mine.length);
        runOnCommThread(() -> {
            comm.allGather(shard, all);
            return null;
        }, "checking that all ranks have the same parameters");
        String bad = ParameterDigest.differing(mine, all.toLongVector(), comm.size());
        if (!bad.isEmpty()) {
            throw new CollieException("data parallel: rank " + comm.rank() + " has " + mine[0] + " trainable parameters"
                    + " whose names, shapes or types differ from those of " + bad
                    + "; every data-parallel rank must hold the same model replica");
        }
    }

    /** Copies {@code g} into its bucket and launches every bucket that is full, in order; {@code p} keeps {@code g}. */
    @Override
    public boolean launch(Parameter p, INDArray g) {
        Slot s = slots.get(p);
        Bucket b = s.bucket();
        // copy into the flat buffer now: the gradient may be the caller's array, gone after this call
        b.flat.get(NDArrayIndex.interval(s.offset(), s.offset() + p.numel()))
                .assign(g.reshape(p.numel()));
        synchronized (launchLock) {
            int i = b.slots.indexOf(s);
            if (b.ready[i]) {
                throw new IllegalStateException("data parallel: gradient of " + s.name() + " completed twice in one step");
            }
            b.ready[i] = true;
            b.pending--;
            while (nextToLaunch < buckets.size() && buckets.get(nextToLaunch).pending == 0) {
                Bucket next = buckets.get(nextToLaunch++);
                inFlight.add(commThread.submit(() -> reduce(next)));
            }
        }
        return true;        // finishReduction() writes the average into the parameter's own buffer
    }

    private void reduce(Bucket b) {
        if (commFailure != null) {
            return;     // an earlier bucket failed: the ranks are out of step, do not start another collective
        }
        try {
            comm.allReduce(b.flat, ReduceOp.AVG);
        } catch (RuntimeException | Error e) {
            commFailure = e;
            throw e;
        }
    }

    /**
     * Waits for every bucket's all-reduce and writes the averaged gradients into the parameters.
     *
     * @throws CollieException naming the parameters that got no gradient this step, or when an all-reduce
     *         failed or did not finish in time (a peer rank failed or is gone)
     */
    @Override
    public void finishReduction() {
        List<Future<?>> launched;
        List<String> missing;
        synchronized (launchLock) {
            missing = GradientBucket.missing(buckets);
            launched = new ArrayList<>(inFlight);
            inFlight.clear();
        }
        try {
            if (!missing.isEmpty()) {
                throw GradientBucket.noGradient("data parallel rank " + comm.rank(), missing, "all-reduces");
            }
            long waitMs = comm.timeout().toMillis() * Math.max(2, 2L * (comm.size() - 1)) + 1000;
            for (int k = 0; k < launched.size(); k++) {
                await(launched.get(k), waitMs, k);
            }
            for (Bucket b : buckets) {
                for (Slot s : b.slots) {
                    INDArray part = b.flat.get(NDArrayIndex.interval(s.offset(),
                            s.offset() + s.p().numel()));
                    s.p().grad().assign(part.reshape(s.p().shape()));
                }
            }
        } finally {
            synchronized (launchLock) {
                nextToLaunch = 0;
                for (Bucket b : buckets) {
                    b.reset();
                }
            }
        }
    }

    private void await(Future<?> f, long waitMs, int bucket) {
        try {
            f.get(waitMs, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CollieException("data parallel rank " + comm.rank() + ": interrupted while waiting for the"
                    + " all-reduce of bucket " + bucket, e);
        } catch (ExecutionException e) {
            throw new CollieException("data parallel rank " + comm.rank() + ": the gradient all-reduce of bucket "
                    + bucket + " failed (a peer rank failed or is gone): " + e.getCause().getMessage(), e.getCause());
        } catch (TimeoutException e) {
            commFailure = e;
            throw new CollieException("data parallel rank " + comm.rank() + ": the gradient all-reduce of bucket "
                    + bucket + " did not finish within " + waitMs + " ms (a peer rank is stuck or gone)");
        }
    }

    /** Averages {@code value} over the ranks (e.g. a step's loss); every rank must call it at the same point. */
    public double averageAcrossRanks(double value) {
        INDArray a = Nd4j.createFromArray(new double[] {value});
        runOnCommThread(() -> {
            comm.allReduce(a, ReduceOp.AVG);
            return null;
        }, "averaging a value over the ranks");
        return a.getDouble(0);
    }

    private <T> T runOnCommThread(Callable<T> task, String what) {
        Future<T> f = commThread.submit(task);
        long waitMs = CommThread.waitMs(comm);
        try {
            return f.get(waitMs, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CollieException("data parallel rank " + comm.rank() + ": interrupted while " + what, e);
        } catch (ExecutionException e) {
            throw new CollieException("data parallel rank " + comm.rank() + ": failed while " + what + ": "
                    + e.getCause().getMessage(), e.getCause());
        } catch (TimeoutException e) {
            f.cancel(true);
            throw new CollieException("data parallel rank " + comm.rank() + ": no answer within " + waitMs
                    + " ms while " + what);
        }
    }

    /** The number of buckets. */
    public int bucketCount() {
        return buckets.size();
    }

    /** Gradient bytes all-reduced per step (all buckets). */
    public long gradientBytes() {
        long n = 0;
        for (Bucket b : buckets) {
            n += b.length() * b.dtype.width();
        }
        return n;
    }

    /**
     * Values and gradient buffers of the trainable parameters this rank holds (all of them: plain data
     * parallel replicates both) and the buckets' flat buffers (one persistent buffer per bucket).
     */
    public RankMemory memory() {
        long buffers = 0;
        for (Bucket b : buckets) {
            if (b.flat != null) {
                buffers += b.flat.length() * b.dtype.width();
            }
        }
        return RankMemory.of(params.values(), buffers);
    }

    @Override
    public int replicaRank() {
        return comm.rank();
    }

    @Override
    public int replicas() {
        return comm.size();
    }

    @Override
    public Collection<Parameter> routedParameters() {
        return params.values();
    }

    @Override
    public Reduction reduction() {
        return this;
    }

    @Override
    public double average(double value) {
        return averageAcrossRanks(value);
    }

    /** Broadcasts {@code a} from {@code root} to every rank, in place (on the communication thread). */
    public void broadcast(INDArray a, int root) {
        runOnCommThread(() -> {
            comm.broadcast(a, root);
            return null;
        }, "broadcasting from rank " + root);
    }

    @Override
    public void reduceNow(Parameter p, INDArray g) {
        runOnCommThread(() -> {
            comm.allReduce(g, ReduceOp.AVG);
            return null;
        }, "averaging the gradient of one parameter");
    }

    /** This rank's communicator (owned by the communication thread; do not call collectives on it directly). */
    public Communicator communicator() {
        return comm;
    }

    /** Takes the parameters' routes back to plain (keep) and stops the communication thread; the communicator stays open. */
    @Override
    public void close() {
        GradientRoute.detach(params.values());
        // an all-reduce may still run on the buckets (a peer failed mid-step): wait for it to end before
        // freeing them; freeing under it corrupted the native heap (DataParallelTest, a failing rank)
        long waitMs = comm.timeout().toMillis() * 2 + 1000;
        if (!CommThread.stop(commThread, waitMs)) {
            LOG.warn("data parallel rank {}: the all-reduce thread"
                    + " did not stop within {} ms; its buckets are left allocated", comm.rank(), waitMs);
            return;
        }
        for (Bucket b : buckets) {
            if (b.flat != null) {
                b.flat.close();
                b.flat = null;
            }
        }
    }
}
