package dev.collie.core.nn;

import dev.collie.core.tensor.ActivationDtype;
import dev.collie.core.tensor.Bf16;
import dev.collie.core.tensor.Workspaces;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayDeque;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * What one micro-batch's forward leaves for its backward (DESIGN.md §2 rule 1): modules push their saved
 * state here instead of into fields, so several micro-batches can be in flight through the same modules.
 * The tape also carries the micro-batch's sequence layout (batch size, length, positions, mask), a cache
 * for values shared by all layers (rotary tables, attention masks), and the count of pending gradient
 * contributions per parameter, which tells {@link Parameter#accumulateGrad} when a gradient is complete.
 *
 * <p>Arrays a layer keeps for backward go through {@link #stash} (activations: stored in the tape's
 * {@link ActivationDtype}, read back with {@link #restore}) or {@link #keep} (what backward needs exactly). With
 * {@link ActivationDtype#BF16} each layer of a {@link LayerStack} runs its training forward in the scratch workspace
 * ({@link #forwardLayer}): its temporaries and the float32 originals of what it stashed die with it, and only the
 * narrowed copies, the kept arrays and its output stay in the micro-batch's workspace.
 */
public final class Tape {
    /** The micro-batch's layout and per-layout cache, shared by a tape and its recompute children. */
    private static final class Shared {
        final Map<Object, Object> cache = new HashMap<>();
        final GradState grads;
        final int part;           // which of the micro-batch's row parts this tape runs (0 without parts)
        int batchSize;
        int seqLen;
        int pastLength;
        INDArray attentionMask;
        KvCache kvCache;
        Attention.Prefix attentionPrefix;
        /**
         * While a layer's forward runs in the scratch workspace ({@link #forwardLayer}): where kept state and cached
         * values go (also for the child tapes a checkpointed layer runs its forward on).
         */
        MemoryWorkspace keepIn;

        Shared(GradState grads, int part) {
            this.grads = grads;
            this.part = part;
        }
    }

    /**
     * Pending gradient contributions per parameter, shared by every tape of one micro-batch, including
     * {@link #part} tapes that run parts of its rows on other threads (hence the locking): in total, and per part
     * pending and delivered. With three or more parts the contributions to a parameter are added in rounds: the k-th
     * contribution of part p waits for the k-th of the parts before it and the (k−1)-th of those after it, so the
     * sum is made in one order whatever the threads' timing, and a parameter used twice (tied embeddings) does not
     * make the parts wait for each other's whole backward. Two parts that add one contribution each need no waiting:
     * one addition commutes.
     */
    private static final class GradState {
        private final IdentityHashMap<Parameter, int[]> pendingUses = new IdentityHashMap<>();
        private volatile boolean lastMicroBatch = true;
        private int parts = 1;
        private String failed;

        synchronized void split(int n) {
            if (!pendingUses.isEmpty()) {
                throw new IllegalStateException("a micro-batch is split into parts before any parameter is used");
            }
            parts = n;
        }

        /** {@code [0]}: pending in all; {@code [1 + j]}: pending of part j; {@code [1 + parts + j]}: delivered by j. */
        synchronized void use(Parameter p, int part) {
            int[] n = pendingUses.computeIfAbsent(p, k -> new int[1 + 2 * parts]);
            n[0]++;
            n[1 + part]++;
        }

        synchronized boolean release(Parameter p, int part) {
            int[] n = pendingUses.get(p);
            if (n == null || n[0] <= 0 || n[1 + part] <= 0) {
                throw new IllegalStateException("more gradient contributions than uses for " + p);
            }
            n[1 + part]--;
            n[1 + parts + part]++;
            if (parts > 1) {
                notifyAll();
            }
            if (--n[0] == 0) {
                pendingUses.remove(p);
                return lastMicroBatch;
            }
            return false;
        }

        /** Waits until {@code part}'s next contribution to {@code p} is the next in the order of rounds. */
        synchronized void awaitTurn(Parameter p, int part) {
            int[] n = pendingUses.get(p);
            // one part, or two parts adding one contribution each (one addition, which commutes): nothing to order
            if (parts == 1 || n == null || parts == 2 && n[1 + part] + n[1 + parts + part] == 1) {
                return;
            }
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(10);
            while (failed == null && !isTurn(p, part)) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IllegalStateException("part " + part + " waited 10 minutes for the earlier parts'"
                            + " gradients of " + p);
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while waiting for the earlier parts' gradients", e);
                }
            }
            if (failed != null) {
                throw new IllegalStateException("another part of the micro-batch failed: " + failed);
            }
        }

        private boolean isTurn(Parameter p, int part) {
            int[] n = pendingUses.get(p);
            if (n == null) {
                return true;
            }
            int round = n[1 + parts + part] + 1;
            for (int j = 0; j < parts; j++) {
                int needed = j < part ? round : round - 1;
                if (j != part && n[1 + j] > 0 && n[1 + parts + j] < needed) {
                    return false;
                }
            }
            return true;
        }

        synchronized void fail(String why) {
            failed = why;
            notifyAll();
        }
    }

    /**
     * Float32 activations of fewer elements than this are stashed as they are: the copy's fixed cost (two native
     * calls) outweighs the bytes it saves.
     */
    public static final long MIN_NARROWED = 1024;

    private final Shared shared;
    private final boolean saving;
    private final boolean counting;
    private final ActivationDtype activations;
    private final IdentityHashMap<Object, ArrayDeque<Object>> saved = new IdentityHashMap<>();
    /** What {@link #stash} stored for each array it was given (an array stashed by several layers is stored once). */
    private final IdentityHashMap<INDArray, INDArray> stashed = new IdentityHashMap<>();
    /** The stored arrays that are narrowed copies ({@link #restore} widens these). */
    private final Set<INDArray> narrowed = Collections.newSetFromMap(new IdentityHashMap<>());
    private long stashedBytes;
    private double lossGradScale = 1.0;
    /** Layers' training forwards in the scratch workspace even with fp32 activations ({@link #forwardLayer}). */
    private boolean scratchForward;

    private Tape(Shared shared, boolean saving, boolean counting, ActivationDtype activations) {
        this.shared = shared;
        this.saving = saving;
        this.counting = counting;
        this.activations = activations;
    }

    /** A tape for a training forward of a {@code [batchSize, seqLen]} micro-batch, activations stored as computed. */
    public static Tape forTraining(int batchSize, int seqLen) {
        return forTraining(batchSize, seqLen, ActivationDtype.FP32);
    }

    /**
     * A tape for a training forward of a {@code [batchSize, seqLen]} micro-batch whose layers {@link #stash} their
     * activations as {@code activations}.
     */
    public static Tape forTraining(int batchSize, int seqLen, ActivationDtype activations) {
        Shared s = new Shared(new GradState(), 0);
        s.batchSize = batchSize;
        s.seqLen = seqLen;
        return new Tape(s, true, true, activations);
    }

    /** A tape that saves nothing and counts nothing: forward only (scoring, evaluation, generation). */
    public static Tape forInference(int batchSize, int seqLen) {
        Shared s = new Shared(new GradState(), 0);
        s.batchSize = batchSize;
        s.seqLen = seqLen;
        return new Tape(s, false, false, ActivationDtype.FP32);
    }

    /**
     * A child scope for recomputation: {@code saving} says whether modules keep state for backward,
     * {@code counting} whether parameter uses are counted (a recomputed forward must not count twice). A child
     * stores activations as computed: a recomputed block's live only during that block's backward, in its scratch
     * workspace, where narrowing them would save nothing.
     */
    public Tape child(boolean saving, boolean counting) {
        return new Tape(shared, saving, counting, ActivationDtype.FP32);
    }

    /**
     * A tape with its own layout ({@code batchSize} rows of {@code seqLen}), saved state and cache, but the same
     * gradient bookkeeping and part as this one (prompt tuning's longer rows), so each parameter's hook fires once,
     * after every contribution.
     */
    public Tape sibling(int batchSize, int seqLen) {
        return sibling(shared.part, batchSize, seqLen);
    }

    /**
     * Splits this micro-batch's rows into {@code parts} parts, each run by a {@link #part} tape on a thread of its
     * own; call before any forward.
     */
    public Tape splitInto(int parts) {
        shared.grads.split(parts);
        return this;
    }

    /** The tape of part {@code index} of a {@link #splitInto split} micro-batch, {@code batchSize} of its rows. */
    public Tape part(int index, int batchSize, int seqLen) {
        return sibling(index, batchSize, seqLen);
    }

    /** Tells the other parts that this one failed: a part waiting for its turn fails at once instead of waiting. */
    public void abandon(Throwable why) {
        shared.grads.fail(String.valueOf(why));
    }

    private Tape sibling(int part, int batchSize, int seqLen) {
        Shared s = new Shared(shared.grads, part);
        s.batchSize = batchSize;
        s.seqLen = seqLen;
        return new Tape(s, saving, counting, activations).scratchForward(scratchForward);
    }

    /**
     * With {@code on}, each layer's training forward runs in the scratch workspace with fp32 activations too, so only
     * what it stashes and keeps outlives it (copied out) and its other temporaries do not: worth the copies where
     * layers keep little of what they compute, as over a frozen base (PEFT), whose linears keep no inputs.
     */
    public Tape scratchForward(boolean on) {
        this.scratchForward = on;
        return this;
    }

    // ---- sequence layout ------------------------------------------------------------------------

    public int batchSize() {
        return shared.batchSize;
    }

    public int seqLen() {
        return shared.seqLen;
    }

    /**
     * Positions before this forward's first row: the tokens already in the KV cache plus the length of an
     * {@link #attentionPrefix() attention prefix} (0 in plain training): the position of the first row.
     */
    public int pastLength() {
        return shared.pastLength + (shared.attentionPrefix == null ? 0 : shared.attentionPrefix.length());
    }

    /** The {@code [batch, past + seqLen]} mask, 1 for real tokens and 0 for padding; null when all are real. */
    public INDArray attentionMask() {
        return shared.attentionMask;
    }

    public Tape setAttentionMask(INDArray mask) {
        shared.attentionMask = mask;
        return this;
    }

    public KvCache kvCache() {
        return shared.kvCache;
    }

    /** Learned keys and values every attention layer puts before its own (prefix tuning), or null. */
    public Attention.Prefix attentionPrefix() {
        return shared.attentionPrefix;
    }

    /**
     * Sets the keys and values every attention layer puts before its own (prefix tuning); positions then start
     * after them, and an attention mask must cover them ({@code [batch, prefix + seqLen]}).
     */
    public Tape setAttentionPrefix(Attention.Prefix prefix) {
        shared.attentionPrefix = prefix;
        return this;
    }

    /** Attaches a KV cache (generation); positions then start at the cache's current length. */
    public Tape setKvCache(KvCache cache) {
        shared.kvCache = cache;
        shared.pastLength = cache == null ? 0 : cache.length();
        return this;
    }

    /** Whether this micro-batch is the last of its optimizer step (gradient hooks fire only then). */
    public boolean isLastMicroBatch() {
        return shared.grads.lastMicroBatch;
    }

    public Tape setLastMicroBatch(boolean last) {
        shared.grads.lastMicroBatch = last;
        return this;
    }

    public boolean isTraining() {
        return counting || saving;
    }

    /**
     * Announces the factor the loss's gradient will be scaled by in backward (a worker's share of the rows, 1 over
     * the accumulated micro-batches), so a loss can fold it into the pass that computes its gradient. A hint:
     * backward scales by what it is given either way.
     */
    public Tape setLossGradScale(double scale) {
        this.lossGradScale = scale;
        return this;
    }

    /** The factor set by {@link #setLossGradScale} (1 unless set). */
    public double lossGradScale() {
        return lossGradScale;
    }

    /**
     * A value computed once per micro-batch and shared by every layer (e.g. rotary tables). An inference tape builds
     * it outside any workspace: its layers each run in a scratch workspace ({@link LayerStack#forward}) that is reset
     * before the next layer reads the value.
     */
    @SuppressWarnings("unchecked")
    public <T> T cached(Object key, Supplier<T> compute) {
        if (isTraining()) {
            // built where the micro-batch's saved state lives: a layer's scratch workspace dies with the layer
            return (T) shared.cache.computeIfAbsent(key, k -> inKeptWorkspace(compute));
        }
        return (T) shared.cache.computeIfAbsent(key, k -> {
            try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                return compute.get();
            }
        });
    }

    // ---- saved state --------------------------------------------------------------------------------

    /**
     * Keeps {@code state} for {@code owner}'s backward (a no-op on inference tapes). The arrays in it come from
     * {@link #stash} or {@link #keep} (or outlive the layer: its input, a parameter).
     */
    public void save(Object owner, Object state) {
        if (saving) {
            if (shared.keepIn != null) {
                checkKept(owner, state);
            }
            saved.computeIfAbsent(owner, k -> new ArrayDeque<>()).push(state);
        }
    }

    /** How this tape stores what layers {@link #stash} (fp32 on inference and recompute tapes). */
    public ActivationDtype activationDtype() {
        return activations;
    }

    /**
     * An activation {@code x} for backward (a layer's input, a normalized row, attention probabilities), stored as
     * this tape's {@link #activationDtype}: with bf16 a float32 array of at least {@link #MIN_NARROWED} elements is
     * rounded to bfloat16, anything else is {@link #keep kept}. Save what this returns and give it to
     * {@link #restore} in backward. An array stashed twice (the input of q, k and v) is stored once. Returns
     * {@code x} itself with fp32, and on tapes that save nothing.
     */
    public INDArray stash(INDArray x) {
        if (!saving || x == null) {
            return x;
        }
        INDArray s = stashed.get(x);
        if (s != null) {
            return s;
        }
        if (activations == ActivationDtype.BF16 && x.dataType() == DataType.FLOAT && x.length() >= MIN_NARROWED) {
            s = inKeptWorkspace(() -> Bf16.narrow(x));
            narrowed.add(s);
        } else {
            s = keep(x);
        }
        stashed.put(x, s);
        stashedBytes += s.length() * s.dataType().width();
        return s;
    }

    /** A {@link #stash stashed} array as backward uses it: widened to float32 (in the current workspace) if narrowed. */
    public INDArray restore(INDArray stored) {
        return stored != null && narrowed.contains(stored) ? Bf16.widen(stored) : stored;
    }

    /**
     * An array backward needs exactly as computed (per-row statistics, masks, ids): {@code x} itself, or, while a
     * layer's forward runs in the scratch workspace, its copy in the micro-batch's workspace.
     */
    public INDArray keep(INDArray x) {
        if (!saving || x == null || shared.keepIn == null || !Workspaces.inScratch(x)) {
            return x;
        }
        return inKeptWorkspace(() -> Bf16.copy(x, x.dataType()));
    }

    /** Bytes of the arrays {@link #stash} stored on this tape (each stored array once). */
    public long stashedBytes() {
        return stashedBytes;
    }

    /**
     * Runs one layer's training forward: with bf16 activations (or {@link #scratchForward}) in the scratch workspace,
     * so its temporaries and the float32 originals of what it stashes are not kept (only its output, copied out, and
     * what it stashed and kept); else (fp32, no enclosing workspace, or already inside a layer) directly.
     */
    public INDArray forwardLayer(Supplier<INDArray> forward) {
        MemoryWorkspace current = Nd4j.getMemoryManager().getCurrentWorkspace();
        if (activations == ActivationDtype.FP32 && !scratchForward || !saving || shared.keepIn != null || current == null
                || Workspaces.isScratch(current)) {
            return forward.get();
        }
        shared.keepIn = current;
        try {
            return Workspaces.scratch(forward);
        } finally {
            shared.keepIn = null;
        }
    }

    /** {@code make}'s result allocated where saved state lives: the enclosing workspace while in a layer's scratch. */
    private <T> T inKeptWorkspace(Supplier<T> make) {
        MemoryWorkspace keepIn = shared.keepIn;
        if (keepIn == null || Nd4j.getMemoryManager().getCurrentWorkspace() == keepIn) {
            return make.get();
        }
        try (MemoryWorkspace borrowed = keepIn.notifyScopeBorrowed()) {
            return make.get();
        }
    }

    /** Refuses state holding an array of a layer's scratch workspace, which is reused once the layer returns. */
    private static void checkKept(Object owner, Object state) {
        if (state instanceof INDArray a && Workspaces.inScratch(a)
                || state instanceof Object[] all && java.util.Arrays.stream(all)
                        .anyMatch(o -> o instanceof INDArray a && Workspaces.inScratch(a))) {
            throw new IllegalStateException(owner.getClass().getSimpleName() + " saved an array of its layer's scratch"
                    + " workspace: pass it through Tape.stash or Tape.keep");
        }
    }

    /** The state {@code owner} saved most recently (uses of one module are undone in reverse order). */
    @SuppressWarnings("unchecked")
    public <T> T pop(Object owner) {
        ArrayDeque<Object> stack = saved.get(owner);
        if (stack == null || stack.isEmpty()) {
            throw new IllegalStateException("backward of " + owner.getClass().getSimpleName()
                    + " without a matching forward on this tape");
        }
        return (T) stack.pop();
    }

    // ---- gradient bookkeeping -------------------------------------------------------------------------

    /** Records that forward used {@code p}: backward owes it one gradient contribution. */
    public void use(Parameter p) {
        if (counting && p.requiresGrad()) {
            shared.grads.use(p, shared.part);
        }
    }

    /** Called by {@link Parameter#accumulateGrad}: true when the gradient of the step is now complete. */
    boolean release(Parameter p) {
        return shared.grads.release(p, shared.part);
    }

    /**
     * Called by {@link Parameter} before it adds this tape's contribution (holding no lock): waits for the earlier
     * parts' contributions to {@code p}, so that the sum is made in part order.
     */
    void awaitTurn(Parameter p) {
        shared.grads.awaitTurn(p, shared.part);
    }
}
