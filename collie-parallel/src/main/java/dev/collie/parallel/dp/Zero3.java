package dev.collie.parallel.dp;

import dev.collie.core.Scope;
import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Embedding;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.LayerWrapper;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.nn.TiedEmbedding;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * ZeRO stage 3: optimizer state, gradients and parameters sharded by parameter. Every trainable parameter
 * has one owner rank and lives only there between uses: on the other ranks it is offloaded
 * ({@link Parameter#offload()}: shape and type kept, no value). Each of the model's
 * {@link LanguageModel#pipelineLayers() pipeline layers} (embedding, decoder blocks, final norm, output
 * head) is replaced in the module tree by a {@link LayerWrapper} (same node, same names) that gathers the
 * layer's parameters around each use: forward = gather (broadcast from each owner), run, release; backward =
 * gather, run the inner backward (the gradient hooks fire inside, and the gradients go to their owners as in
 * {@link Zero2}), release. The embedding's backward reads no weight and gathers nothing. A tied output head
 * is reached through the wrapped embedding's {@link TiedEmbedding#outputHead()}, which gathers the table too.
 *
 * <p>Every collective of a rank (gathers, submitted from the rank's thread, and bucket reductions, launched
 * from the gradient hooks) runs on one communication thread in program order, so ranks issue identical
 * sequences. That needs <b>one forward/backward thread per rank</b> ({@code CollieConfig.workerThreads(1)}):
 * a second thread entering a gather within the same step is refused with an {@link IllegalStateException}.
 *
 * <p><b>Split parameters.</b> When whole-parameter ownership would leave a rank more than 5 % off 1/dp of the
 * elements (a large embedding and head on a small model at dp 4), the largest parameters are split into one
 * block of rows per rank ({@link SplitPolicy}, {@link #splitParameters()}): rank r keeps only its block, an
 * array of its own held by a {@link Parameter} under the parameter's name in {@link #ownedParameters()} (the
 * master copy of those rows; the whole value is offloaded on every rank), and a gather all-gathers the blocks
 * instead of broadcasting from an owner. Gradients as {@link Zero2}: the bucket's reduce-scatter hands each
 * block its averaged gradient. Element-wise optimizers (AdamW, Lion, Adan, SophiaG, SGD) train exactly as
 * with whole parameters; fused-backward ones (LOMO, AdaLomo) need {@code splitLargeParameters = false}.
 *
 * <p>The optimizer is built over {@link #ownedParameters()}; the owners' values are the master copy, so
 * nothing needs broadcasting after the step. Outside training (saving a checkpoint, comparing weights) use
 * {@link #gatherAll()}/{@link #releaseAll()} or {@link #gathered()} on every rank; values written into a split
 * parameter while so gathered (a resumed checkpoint) go back into this rank's block when it is released. Only
 * trainable parameters are sharded; frozen ones stay replicated.
 *
 * <p>With the Trainer: it runs one forward/backward stream per rank ({@link #requiresSingleStream()}), gathers
 * the model around its checkpoints ({@link #gatherParameters()}) and sums its clipping norm over the ranks
 * ({@link #shardsGradients()}). That norm is taken over the model's trainable parameters, though, and a split
 * parameter's gradient lives in the row blocks (the optimizer's parameters), not in the model's parameter:
 * with split parameters ({@link #splitParameters()} not empty) {@code clip_grad_norm} is only right once the
 * Trainer clips over {@code optimizer.parameters()} ({@link #globalGradientNorm()} is the whole norm).
 *
 * <p>Communication per step, for S bytes of trainable parameters on n ranks: the gradients as ZeRO-2, and
 * two gathers of every parameter (forward and backward; three for activation-checkpointed blocks, whose
 * forward is rerun; one for an untied embedding, whose backward reads no weight; three for a tied table), each a
 * ring broadcast of about {@code (n−1)/n·S} per rank on average (a ring all-gather of exactly that for a split
 * parameter), against ZeRO-2's one broadcast after the step.
 *
 * <p>Why one class of ~530 lines: wrapping the layers, gathering around each use, offloading, and the whole-model
 * gathers for checkpoints share one count of what is gathered and one thread binding; apart they would each need the
 * other's state.
 */
public final class Zero3 extends ShardedSync {
    private final LanguageModel model;
    private final Map<Parameter, int[]> gathers = new IdentityHashMap<>();
    /** Split parameters gathered by {@link #gatherAll()}: their rows go back into this rank's block on release. */
    private final Set<Parameter> dirty = Collections.newSetFromMap(new IdentityHashMap<>());
    private final List<Replacement> replaced = new ArrayList<>();
    private final List<Gathering> wrappers = new ArrayList<>();
    private Thread boundThread;
    private int depth;
    /** Set once a second thread entered: every later gather fails too, so all threads of the step stop. */
    private String poisoned;
    private long gatheredBytes;
    private long peakGatheredBytes;
    private long gatherBytesSent;
    private int globalGathers;

    private record Replacement(Module parent, String child, Module original) { }

    /** With {@link DataParallel#DEFAULT_BUCKET_BYTES}, splitting large parameters. */
    public Zero3(LanguageModel model, Communicator comm) {
        this(model, comm, DataParallel.DEFAULT_BUCKET_BYTES);
    }

    /**
     * Shards {@code model}'s trainable parameters over the ranks of {@code comm}: checks that every rank has the
     * same parameters, wraps the pipeline layers, and drops the values this rank does not own (splitting large
     * parameters into row blocks where whole ones cannot balance the ranks). Every rank must call it at the
     * same point.
     *
     * @throws CollieException when a pipeline layer cannot be found in the module tree, or a trainable
     *         parameter belongs to no pipeline layer (it could never be gathered)
     */
    public Zero3(LanguageModel model, Communicator comm, long bucketBytes) {
        this(model, comm, bucketBytes, true);
    }

    /**
     * As {@link #Zero3(LanguageModel, Communicator, long)}; with {@code splitLargeParameters} false every
     * parameter has one owner, as fused-backward optimizers (LOMO, AdaLomo) need.
     */
    public Zero3(LanguageModel model, Communicator comm, long bucketBytes, boolean splitLargeParameters) {
        this(model, comm, bucketBytes, SplitPolicy.of(splitLargeParameters));
    }

    Zero3(LanguageModel model, Communicator comm, long bucketBytes, SplitPolicy policy) {
        super(reducer("ZeRO-3", model.module().namedParameters(), comm, bucketBytes, policy, true));
        this.model = model;
        try {
            for (Parameter p : grads.plan().parameters()) {
                gathers.put(p, new int[1]);
            }
            wrapLayers();
        } catch (RuntimeException e) {
            unwrap();
            grads.close();
            throw e;
        }
        for (Parameter p : grads.plan().parameters()) {
            if (!grads.plan().owns(p)) {
                p.offload();            // a split parameter on every rank: its block has a copy of its rows
            }
        }
    }

    // ------------------------------------------------------------------ wrapping the model

    private void wrapLayers() {
        Module root = model.module();
        Set<Parameter> covered = Collections.newSetFromMap(new IdentityHashMap<>());
        Layer originalHead = null;
        for (Layer target : model.pipelineLayers()) {
            if (target == originalHead) {
                continue;       // the tied head: the wrapped embedding brings a gathering head
            }
            Replacement at = findInTree(root, target);
            if (at == null) {
                throw new CollieException("ZeRO-3: pipeline layer " + target.getClass().getSimpleName() + " of "
                        + model.getClass().getSimpleName() + " is not a module of its tree, so it cannot be"
                        + " replaced by a gathering wrapper");
            }
            Gathering w;
            if (target instanceof TiedEmbedding tied) {
                originalHead = tied.outputHead();
                w = new GatheringEmbedding(target, at.child());
            } else {
                w = new Gathering(target, at.child());
            }
            at.parent().replaceModule(at.child(), w);
            replaced.add(at);
            wrappers.add(w);
            covered.addAll(w.params);
            if (w instanceof GatheringEmbedding e) {
                covered.addAll(e.head.params);
            }
        }
        List<String> orphans = new ArrayList<>();
        for (Parameter p : grads.plan().parameters()) {
            if (!covered.contains(p)) {
                orphans.add(grads.plan().name(p));
            }
        }
        if (!orphans.isEmpty()) {
            throw new CollieException("ZeRO-3: trainable parameter(s) " + orphans + " belong to no pipeline layer of "
                    + model.getClass().getSimpleName() + ", so they could never be gathered; freeze them or expose"
                    + " their module through pipelineLayers()");
        }
        // the model must now run through the wrappers
        Set<Object> ours = Collections.newSetFromMap(new IdentityHashMap<>());
        ours.addAll(wrappers);
        for (Gathering w : wrappers) {
            if (w instanceof GatheringEmbedding e) {
                ours.add(e.head);
            }
        }
        for (Layer l : model.pipelineLayers()) {
            Layer target = l;
            while (!ours.contains(target) && target instanceof LayerWrapper w) {
                target = w.inner();     // activation checkpointing turned on after ZeRO-3 wraps a gathering block
            }
            if (!ours.contains(target)) {
                throw new CollieException("ZeRO-3: after wrapping, " + model.getClass().getSimpleName()
                        + " still runs " + target.getClass().getSimpleName() + " directly");
            }
        }
    }

    /** The parent module and child name under which {@code target} sits in the tree (by identity), or null. */
    private static Replacement findInTree(Module root, Layer target) {
        for (Module m : root.namedModules().values()) {
            for (Map.Entry<String, Module> c : m.children().entrySet()) {
                if (c.getValue() == target) {
                    return new Replacement(m, c.getKey(), c.getValue());
                }
            }
        }
        return null;
    }

    private void unwrap() {
        for (int i = replaced.size() - 1; i >= 0; i--) {
            Replacement r = replaced.get(i);
            r.parent().replaceModule(r.child(), r.original());
        }
        replaced.clear();
    }

    /** The sharded (trainable) parameters of a layer's module, each once, in registration order. */
    private List<Parameter> shardedParams(Module m) {
        List<Parameter> out = new ArrayList<>();
        for (Parameter p : m.trainableParameters()) {
            if (gathers.containsKey(p)) {
                out.add(p);
            }
        }
        return out;
    }

    /** A pipeline layer whose sharded parameters are gathered around each forward and backward. */
    private class Gathering extends LayerWrapper {
        final List<Parameter> params;
        final String name;
        final boolean gatherForBackward;

        Gathering(Layer inner, String name) {
            super(inner);
            this.params = shardedParams((Module) inner);
            this.name = name;
            // Embedding's backward scatters rows into a zero gradient and never reads the table
            this.gatherForBackward = !(inner instanceof Embedding);
        }

        @Override
        public INDArray forward(Tape tape, INDArray x) {
            try (Scope ignored = gather(params, name)) {
                return inner().forward(tape, x);
            }
        }

        @Override
        public INDArray backward(Tape tape, INDArray dy) {
            if (!gatherForBackward) {
                return inner().backward(tape, dy);
            }
            try (Scope ignored = gather(params, name)) {
                return inner().backward(tape, dy);
            }
        }
    }

    /** A wrapped tied embedding: its output head gathers the table too. */
    private final class GatheringEmbedding extends Gathering implements TiedEmbedding {
        final GatheringHead head;

        GatheringEmbedding(Layer inner, String name) {
            super(inner, name);
            Layer h = ((TiedEmbedding) inner).outputHead();
            Set<Parameter> ps = new LinkedHashSet<>(params);
            if (h instanceof Module m) {
                ps.addAll(shardedParams(m));
            }
            this.head = new GatheringHead(h, new ArrayList<>(ps), name + " (output head)");
        }

        @Override
        public Layer outputHead() {
            return head;
        }
    }

    /** The tied output head (not a module of the tree) with the embedding table gathered around it. */
    private final class GatheringHead implements Layer {
        final Layer inner;
        final List<Parameter> params;
        final String name;

        GatheringHead(Layer inner, List<Parameter> params, String name) {
            this.inner = inner;
            this.params = params;
            this.name = name;
        }

        @Override
        public INDArray forward(Tape tape, INDArray x) {
            try (Scope ignored = gather(params, name)) {
                return inner.forward(tape, x);
            }
        }

        @Override
        public INDArray backward(Tape tape, INDArray dy) {
            try (Scope ignored = gather(params, name)) {
                return inner.backward(tape, dy);
            }
        }
    }

    // ------------------------------------------------------------------ gathering

    private synchronized void enter() {
        Thread t = Thread.currentThread();
        if (poisoned == null && boundThread != null && boundThread != t) {
            poisoned = "ZeRO-3 rank " + grads.plan().rank + ": parameters gathered from two threads ("
                    + boundThread.getName() + " and " + t.getName() + ") in one step. ZeRO-3 gathers each layer with"
                    + " collectives that every rank must issue in the same order, so it needs one forward/backward"
                    + " thread per rank: set worker_threads to 1 (CollieConfig.workerThreads(1))";
        }
        if (poisoned != null) {
            throw new IllegalStateException(poisoned);
        }
        boundThread = t;
        depth++;
    }

    private synchronized void leave() {
        depth--;
    }

    /** A step boundary: a later step may run on another thread. */
    private synchronized void unbind() {
        if (depth == 0) {
            boundThread = null;
        }
    }

    /**
     * Makes {@code params} resident on this rank until the scope closes (a collective: every rank gathers
     * the same parameters at the same point). Nested gathers of a parameter are counted; only the first
     * communicates and only the last release drops the value again (on non-owners).
     */
    private Scope gather(List<Parameter> params, String what) {
        enter();
        List<Parameter> fetch = new ArrayList<>();
        try {
            for (Parameter p : params) {
                if (gathers.get(p)[0] == 0) {
                    fetch.add(p);
                }
            }
            if (!fetch.isEmpty()) {
                fetch(fetch, what);
            }
            for (Parameter p : params) {
                gathers.get(p)[0]++;
            }
        } catch (RuntimeException | Error e) {
            leave();
            throw e;
        }
        return Scope.once(() -> {
            release(params);
            leave();
        });
    }

    private void fetch(List<Parameter> fetch, String what) {
        INDArray[] bufs = new INDArray[fetch.size()];
        long bytes = 0;
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            for (int i = 0; i < bufs.length; i++) {
                Parameter p = fetch.get(i);
                if (!p.isResident()) {
                    bufs[i] = Nd4j.createUninitialized(p.dtype(), p.shape());
                    bytes += p.numel() * p.dtype().width();
                }
            }
        }
        Communicator comm = grads.comm();
        long sent;
        try {
            sent = grads.thread().call(() -> {
                long before = comm.bytesSent();
                for (int i = 0; i < bufs.length; i++) {
                    Parameter p = fetch.get(i);
                    INDArray into = bufs[i] != null ? bufs[i] : p.data();
                    RowBlocks rb = grads.plan().split(p);
                    if (rb != null) {
                        rb.gather(comm, into, rb.block.data());
                    } else {
                        comm.broadcast(into, grads.plan().owner(p));
                    }
                }
                return comm.bytesSent() - before;
            }, "gathering the parameters of " + what);
        } catch (RuntimeException | Error e) {
            for (INDArray b : bufs) {
                if (b != null) {
                    b.close();
                }
            }
            throw e;
        }
        for (int i = 0; i < bufs.length; i++) {
            if (bufs[i] != null) {
                fetch.get(i).restore(bufs[i]);
            }
        }
        synchronized (this) {
            gatherBytesSent += sent;
            gatheredBytes += bytes;
            peakGatheredBytes = Math.max(peakGatheredBytes, gatheredBytes);
        }
    }

    private void release(List<Parameter> params) {
        long bytes = 0;
        for (Parameter p : params) {
            if (--gathers.get(p)[0] == 0 && !grads.plan().owns(p) && p.isResident()) {
                RowBlocks rb = grads.plan().split(p);
                boolean written;
                synchronized (this) {
                    written = dirty.remove(p);
                }
                if (rb != null && written) {
                    rb.block.data().assign(rb.rows(p.data(), grads.plan().rank));     // e.g. a resumed checkpoint's
                }
                bytes += p.numel() * p.dtype().width();
                p.offload();
            }
        }
        synchronized (this) {
            gatheredBytes -= bytes;
        }
    }

    /**
     * Gathers every sharded parameter onto this rank (a collective: call it on every rank), e.g. before
     * saving a checkpoint or comparing weights; {@link #releaseAll()} drops them again. Counted, like the
     * layers' gathers.
     */
    public void gatherAll() {
        gather(grads.plan().parameters(), "all parameters");
        leave();        // not a scope of this thread: training may go on from another thread
        synchronized (this) {
            globalGathers++;
            for (Parameter p : grads.plan().parameters()) {
                if (grads.plan().split(p) != null) {
                    dirty.add(p);
                }
            }
        }
        unbind();
    }

    /** Undoes one {@link #gatherAll()}: non-owners drop the values they do not own. */
    public void releaseAll() {
        synchronized (this) {
            if (globalGathers == 0) {
                throw new IllegalStateException("ZeRO-3: releaseAll() without gatherAll()");
            }
            globalGathers--;
        }
        release(grads.plan().parameters());
        unbind();
    }

    @Override
    public Scope gatherParameters() {
        return gathered();
    }

    /** {@link #gatherAll()} until the scope closes ({@link #releaseAll()}): {@code try (var s = zero3.gathered()) {...}}. */
    public Scope gathered() {
        gatherAll();
        return Scope.once(this::releaseAll);
    }

    // ------------------------------------------------------------------ Distributed

    @Override
    public void finishReduction() {
        super.finishReduction();
        unbind();
    }

    @Override
    public double average(double value) {
        unbind();
        return grads.average(value);
    }

    /**
     * True: every rank must run its forward and backward on one thread (the gathers are collectives issued in
     * program order).
     */
    @Override
    public boolean requiresSingleStream() {
        return true;
    }

    /** Nothing to share: the owners' values are the master copies, gathered again at their next use. */
    @Override
    public void afterStep() {
        unbind();
    }

    /** The most bytes of other ranks' parameters held at once (a layer's gathered values, on top of {@link #memory()}). */
    public synchronized long peakGatheredBytes() {
        return peakGatheredBytes;
    }

    /** Bytes this rank has sent for gathers so far. */
    public synchronized long gatherBytesSent() {
        return gatherBytesSent;
    }

    /**
     * Puts the original layers back into the module tree, restores the parameters' hooks and stops the
     * communication thread (the communicator stays open). No communication: parameters this rank does not
     * own stay offloaded unless gathered ({@link #gatherAll()} first to keep the whole model).
     */
    @Override
    public void close() {
        unwrap();
        grads.close();
    }
}
