package dev.collie.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * What one micro-batch's forward leaves for its backward (DESIGN.md §2 rule 1): modules push their saved
 * state here instead of into fields, so several micro-batches can be in flight through the same modules.
 * The tape also carries the micro-batch's sequence layout (batch size, length, positions, mask), a cache
 * for values shared by all layers (rotary tables, attention masks), and the count of pending gradient
 * contributions per parameter, which tells {@link Parameter#accumulateGrad} when a gradient is complete.
 */
public final class Tape {
    /** The micro-batch's layout and per-layout cache, shared by a tape and its recompute children. */
    private static final class Shared {
        final Map<Object, Object> cache = new HashMap<>();
        final GradState grads;
        int batchSize;
        int seqLen;
        int pastLength;
        INDArray attentionMask;
        KvCache kvCache;
        Attention.Prefix attentionPrefix;

        Shared(GradState grads) {
            this.grads = grads;
        }
    }

    /**
     * Pending gradient contributions per parameter, shared by every tape of one micro-batch, including
     * {@link #sibling} tapes that run parts of its rows on other threads (hence the locking).
     */
    private static final class GradState {
        private final IdentityHashMap<Parameter, int[]> pendingUses = new IdentityHashMap<>();
        private volatile boolean lastMicroBatch = true;

        synchronized void use(Parameter p) {
            pendingUses.computeIfAbsent(p, k -> new int[1])[0]++;
        }

        synchronized boolean release(Parameter p) {
            int[] n = pendingUses.get(p);
            if (n == null || n[0] <= 0) {
                throw new IllegalStateException("more gradient contributions than uses for " + p);
            }
            if (--n[0] == 0) {
                pendingUses.remove(p);
                return lastMicroBatch;
            }
            return false;
        }
    }

    private final Shared shared;
    private final boolean saving;
    private final boolean counting;
    private final IdentityHashMap<Object, ArrayDeque<Object>> saved = new IdentityHashMap<>();
    private double lossGradScale = 1.0;

    private Tape(Shared shared, boolean saving, boolean counting) {
        this.shared = shared;
        this.saving = saving;
        this.counting = counting;
    }

    /** A tape for a training forward of a {@code [batchSize, seqLen]} micro-batch. */
    public static Tape forTraining(int batchSize, int seqLen) {
        Shared s = new Shared(new GradState());
        s.batchSize = batchSize;
        s.seqLen = seqLen;
        return new Tape(s, true, true);
    }

    /** A tape that saves nothing and counts nothing: forward only (scoring, evaluation, generation). */
    public static Tape forInference(int batchSize, int seqLen) {
        Shared s = new Shared(new GradState());
        s.batchSize = batchSize;
        s.seqLen = seqLen;
        return new Tape(s, false, false);
    }

    /**
     * A child scope for recomputation: {@code saving} says whether modules keep state for backward,
     * {@code counting} whether parameter uses are counted (a recomputed forward must not count twice).
     */
    public Tape child(boolean saving, boolean counting) {
        return new Tape(shared, saving, counting);
    }

    /**
     * A tape for {@code batchSize} of this micro-batch's rows, run on another thread: its own layout,
     * saved state and cache, but the same gradient bookkeeping, so each parameter's hook fires once,
     * after every part has delivered its contribution.
     */
    public Tape sibling(int batchSize, int seqLen) {
        Shared s = new Shared(shared.grads);
        s.batchSize = batchSize;
        s.seqLen = seqLen;
        return new Tape(s, saving, counting);
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

    /** A value computed once per micro-batch and shared by every layer (e.g. rotary tables). */
    @SuppressWarnings("unchecked")
    public <T> T cached(Object key, Supplier<T> compute) {
        return (T) shared.cache.computeIfAbsent(key, k -> compute.get());
    }

    // ---- saved state --------------------------------------------------------------------------------

    /** Keeps {@code state} for {@code owner}'s backward (a no-op on inference tapes). */
    public void save(Object owner, Object state) {
        if (saving) {
            saved.computeIfAbsent(owner, k -> new ArrayDeque<>()).push(state);
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
            shared.grads.use(p);
        }
    }

    /** Called by {@link Parameter#accumulateGrad}: true when the gradient of the step is now complete. */
    boolean release(Parameter p) {
        return shared.grads.release(p);
    }
}
