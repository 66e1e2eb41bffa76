package dev.collie.core.train;

import dev.collie.core.data.Batch;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Tape;
import dev.collie.core.tensor.ActivationDtype;
import dev.collie.core.tensor.Backends;
import dev.collie.core.tensor.Workspaces;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Forward and backward of one optimizer step's micro-batches. With {@code workers > 1} the rows of each
 * micro-batch are split across that many threads that share the model (each with its own tape and
 * workspace; gradients meet in the parameters' buffers): on a few cores, several single-threaded
 * streams of ND4J ops beat one stream of two-threaded ops, whose per-op fork/join leaves a core idle
 * (docs/design-notes.md). Each part's loss gradient is weighted by its share of the counted tokens, so
 * the result is the gradient of the micro-batch's token mean, as with one thread.
 */
public final class StepRunner implements MicroBatchRunner {
    /** The per-thread workspace each part's forward and backward allocate in. */
    public static final String WORKSPACE = "collie-micro-batch";

    private final LanguageModel model;
    private final int workers;
    private final int cores;
    private ExecutorService pool;     // created on first use, released by close()
    private volatile ActivationDtype activations = ActivationDtype.FP32;

    /** {@code workers} threads, or one per core when it is 0. */
    public StepRunner(LanguageModel model, int workers) {
        this(model, workers, Runtime.getRuntime().availableProcessors());
    }

    /**
     * As {@link #StepRunner(LanguageModel, int)} with only {@code cores} of the machine's cores for this
     * runner (several data-parallel ranks as threads of one JVM share the cores out).
     */
    public StepRunner(LanguageModel model, int workers, int cores) {
        if (workers < 0 || cores < 1) {
            throw new IllegalArgumentException("workers must be >= 0 and cores >= 1, got " + workers + ", " + cores);
        }
        this.model = model;
        this.cores = cores;
        this.workers = workers == 0 ? cores : workers;
    }

    private synchronized ExecutorService pool() {
        if (pool == null) {
            pool = Executors.newFixedThreadPool(workers - 1, r -> {
                Thread t = new Thread(r, "collie-worker");
                t.setDaemon(true);
                return t;
            });
        }
        return pool;
    }

    public int workers() {
        return workers;
    }

    /** Each micro-batch's tape stores the activations layers stash as {@code dtype} ({@link Tape#stash}). */
    @Override
    public void setActivationDtype(ActivationDtype dtype) {
        this.activations = dtype;
    }

    private boolean hasFrozenParameters() {
        for (var p : model.module().parameters()) {
            if (!p.requiresGrad()) {
                return true;
            }
        }
        return false;
    }

    /** Runs every micro-batch (gradients scaled by 1/count); returns the mean of the micro-batch losses. */
    @Override
    public double forwardBackward(List<Batch> micro) {
        return run(micro, null);
    }

    /** Against targets sampled from the model's softmax (see {@link MicroBatchRunner#forwardBackwardSampled}). */
    @Override
    public double forwardBackwardSampled(List<Batch> micro, long seed) {
        return run(micro, seed);
    }

    /** Every micro-batch against its labels, or with {@code seed} against sampled targets. */
    private double run(List<Batch> micro, Long seed) {
        double lossSum = 0;
        for (int i = 0; i < micro.size(); i++) {
            lossSum += forwardBackward(micro.get(i), i == micro.size() - 1, 1.0 / micro.size(), seed);
        }
        return lossSum / micro.size();
    }

    /** One micro-batch; its gradient is scaled by {@code scale}; returns its token-mean loss. */
    private double forwardBackward(Batch b, boolean last, double scale, Long seed) {
        int parts = Math.min(workers, b.rows());
        // the cores are shared out between the parts: fewer rows than workers get multi-threaded ops
        int opThreads = Math.max(1, cores / parts);
        Backends.ensureOpThreads(opThreads);
        // over a frozen base (PEFT) the layers keep little of what they compute: their forwards run in scratch
        Tape root = Tape.forTraining(b.rows(), b.seqLen(), activations).setLastMicroBatch(last)
                .scratchForward(hasFrozenParameters());
        if (parts == 1) {
            return part(root, b, scale, null, seed);
        }
        List<Batch> slices = new ArrayList<>();
        long[] counted = new long[parts];
        long total = 0;
        for (int p = 0; p < parts; p++) {
            int r0 = (int) ((long) b.rows() * p / parts);
            int r1 = (int) ((long) b.rows() * (p + 1) / parts);
            slices.add(slice(b, r0, r1));
            counted[p] = seed == null ? CausalLmLoss.countedTokens(model.labelsFor(slices.get(p).labels()))
                    : CausalLmLoss.sampledPositions(model.labelsFor(slices.get(p).attentionMask()));
            total += counted[p];
        }
        double[] share = new double[parts];
        for (int p = 0; p < parts; p++) {
            share[p] = total == 0 ? 1.0 / parts : (double) counted[p] / total;
        }
        // every part registers its parameter uses (forward) before any delivers a gradient (backward):
        // otherwise a hook could fire on one part's gradient alone
        CyclicBarrier forwardsDone = new CyclicBarrier(parts);
        root.splitInto(parts);        // gradients summed in part order: the same bits whatever the threads' timing
        List<Future<Double>> futures = new ArrayList<>();
        for (int p = 1; p < parts; p++) {
            Batch s = slices.get(p);
            double w = share[p];
            Tape t = root.part(p, s.rows(), s.seqLen());
            futures.add(pool().submit(() -> part(t, s, scale * w, forwardsDone, seed)));
        }
        double loss = weighted(part(root.part(0, slices.get(0).rows(), b.seqLen()), slices.get(0), scale * share[0],
                forwardsDone, seed), share[0]);
        for (int p = 1; p < parts; p++) {
            try {
                loss += weighted(futures.get(p - 1).get(), share[p]);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for a worker", e);
            } catch (ExecutionException e) {
                throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
            }
        }
        return loss;
    }

    /** A part with no counted token has a NaN loss and contributes nothing. */
    private static double weighted(double loss, double share) {
        return share == 0 ? 0 : loss * share;
    }

    /**
     * Forward and backward of rows {@code s} on the current thread, gradient scaled by {@code gradScale}; against
     * targets sampled with {@code seed} when it is not null.
     */
    private double part(Tape tape, Batch s, double gradScale, CyclicBarrier forwardsDone, Long seed) {
        MicroBatchRunner.withPaddingMask(tape, s).setLossGradScale(gradScale);
        CausalLmLoss lossFn = model.loss();
        try (MemoryWorkspace ws = Workspaces.open(WORKSPACE)) {
            double loss;
            try {
                INDArray logits = model.forward(tape, s.inputIds());
                loss = MicroBatchRunner.microBatchLoss(model, lossFn, tape, logits, s, seed);
            } catch (RuntimeException | Error e) {
                if (forwardsDone != null) {
                    forwardsDone.reset();     // the other workers fail fast instead of waiting
                }
                throw e;
            }
            if (forwardsDone != null) {
                await(forwardsDone);
            }
            try {
                model.backward(tape, lossFn.backward(tape, gradScale));
            } catch (RuntimeException | Error e) {
                tape.abandon(e);          // the other parts fail fast instead of waiting for this one's turn
                throw e;
            }
            return loss;
        }
    }

    /** Forward only, on the calling thread: the token-mean loss of {@code b} (NaN when no token counts). */
    @Override
    public double loss(Batch b) {
        Tape tape = MicroBatchRunner.withPaddingMask(Tape.forInference(b.rows(), b.seqLen()), b);
        try (MemoryWorkspace ws = Workspaces.open(WORKSPACE)) {
            return model.loss().forward(tape, model.forward(tape, b.inputIds()), model.labelsFor(b.labels()));
        }
    }

    private static void await(CyclicBarrier barrier) {
        try {
            barrier.await(10, TimeUnit.MINUTES);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the other workers' forward", e);
        } catch (BrokenBarrierException | TimeoutException e) {
            throw new IllegalStateException("another worker failed before finishing its forward", e);
        }
    }

    private static Batch slice(Batch b, int r0, int r1) {
        return new Batch(rows(b.inputIds(), r0, r1), rows(b.labels(), r0, r1), rows(b.attentionMask(), r0, r1));
    }

    private static INDArray rows(INDArray a, int r0, int r1) {
        return a.get(NDArrayIndex.interval(r0, r1), NDArrayIndex.all()).dup('c');
    }

    /** Stops the worker threads; a later call starts new ones. */
    @Override
    public synchronized void close() {
        if (pool != null) {
            pool.shutdownNow();
            pool = null;
        }
    }
}
