package dev.collie.core.nn;

import dev.collie.core.tensor.CausalMask;
import dev.collie.core.tensor.Kernels;
import dev.collie.core.tensor.Workspaces;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Objects;

import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/**
 * Causal self-attention with rotary embeddings and grouped-query attention (LLaMA's {@code self_attn}):
 * {@code heads} query heads share {@code kvHeads} key/value heads, {@code heads/kvHeads} each.
 * Rows in and out are {@code [batch·seq, hidden]}; the tape gives batch, length, padding mask and KV cache.
 * GQA costs no copy: the queries of one group are laid out as one taller matrix against their shared keys.
 * The heads a forward computes are read off its projections' widths, so when tensor parallelism gives the
 * projections a share of the heads, attention runs over that share unchanged. {@link Options} hold what differs
 * between model families: which projections carry a bias, a per-head RMSNorm of queries and keys, a sliding window.
 */
public final class Attention extends Module implements Layer, TensorParallelizable {

    /** The names of the per-head query and key norms, where the options ask for them. */
    public static final List<String> PER_HEAD_NORMS = List.of("q_norm", "k_norm");

    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final int window;
    private final Projections projections;
    private final RotaryEmbedding rope;
    /** This attention's tensor-parallel rank and group size (0 and 1 when whole). */
    private int tpRank;
    private int tpSize = 1;

    /**
     * What differs between families' attention.
     *
     * @param qkvBias bias on q_proj, k_proj, v_proj
     * @param outputBias bias on o_proj
     * @param qkNormEps above 0: RMSNorm ({@code q_norm}, {@code k_norm}, weight per head dimension) of every query
     *                  and key head before the rotary embedding, with this epsilon (Qwen3)
     * @param window above 0: a query sees only the last {@code window} positions, itself included (sliding window)
     * @param projections the projections' names, and whether q, k and v come from one fused projection
     */
    public record Options(boolean qkvBias, boolean outputBias, double qkNormEps, int window, Projections projections) {
        public Options {
            if (!(qkNormEps >= 0) || window < 0) {
                throw new IllegalArgumentException("qkNormEps " + qkNormEps + " and window " + window
                        + " must not be negative");
            }
            Objects.requireNonNull(projections, "projections");
        }

        /** Bias on all four projections or on none; no q/k norm, no window, LLaMA's projections. */
        public static Options bias(boolean bias) {
            return new Options(bias, bias, 0, 0, Projections.SEPARATE);
        }
    }

    /**
     * How the queries, keys and values are projected and what the projections are called: three linears
     * {@code q_proj}, {@code k_proj}, {@code v_proj} ({@code fusedQkv} null), or one named {@code fusedQkv} whose
     * output heads are laid out as {@code layout} says; the output projection is {@code output}.
     */
    public record Projections(String fusedQkv, QkvLayout layout, String output) {
        /** LLaMA's: q_proj, k_proj, v_proj and o_proj. */
        public static final Projections SEPARATE = new Projections(null, null, "o_proj");

        public Projections {
            if ((fusedQkv == null) != (layout == null) || output == null) {
                throw new IllegalArgumentException("a fused projection has a name and a layout; the output a name");
            }
        }
    }

    /**
     * The order of the heads in a fused q/k/v projection's output: {@code groups} blocks one after another, each
     * holding its share of the heads, {@code heads/groups} queries and {@code kvHeads/groups} keys and values, as
     * three sections in {@code order}; {@code groups} 0 means one group per key/value head. A tensor-parallel split
     * keeps whole groups when there are several, and cuts each section of a single group into the ranks' blocks
     * ({@link Attention#sectionsOf}).
     */
    public record QkvLayout(int groups, List<Part> order) {
        /** For each key/value head: its query heads, then its key head, then its value head (InternLM2's wqkv). */
        public static final QkvLayout GROUPED = new QkvLayout(0, List.of(Part.QUERY, Part.KEY, Part.VALUE));
        /** Every query head, then every key head, then every value head (ChatGLM's query_key_value). */
        public static final QkvLayout SECTIONED = new QkvLayout(1, List.of(Part.QUERY, Part.KEY, Part.VALUE));

        /** The three kinds of heads. */
        public enum Part { QUERY, KEY, VALUE }

        public QkvLayout {
            order = List.copyOf(order);
            if (groups < 0 || order.size() != 3 || !order.containsAll(List.of(Part.values()))) {
                throw new IllegalArgumentException("a fused q/k/v layout has a non-negative number of groups and"
                        + " each of query, key and value once in its order, not " + groups + " " + order);
            }
        }

        /** The number of groups of a projection over {@code kvHeads} key/value heads. */
        public int groupsFor(int kvHeads) {
            return groups == 0 ? kvHeads : groups;
        }
    }

    /**
     * What backward needs: the queries, keys and values as {@link Tape#stash} stored them (the probabilities are
     * recomputed from them);
     * {@code prefix} is the number of leading key positions that came from a {@link Prefix}.
     */
    private record Saved(INDArray q, INDArray k, INDArray v, int prefix, int heads, int kvHeads, long[] shared) {
    }

    /**
     * The attention probabilities {@code softmax(q·kᵀ + mask)} of grouped queries {@code [b, kv, g·t, d]} over keys
     * {@code [b, kv, tk, d]}: the forward's, and the same bits again in backward from the same q and k.
     */
    private INDArray probabilities(Tape tape, INDArray q, INDArray k, int b, int heads, int t) {
        INDArray scores = Kernels.get().matmul(q, k, false, true);
        long tk = scores.size(scores.rank() - 1);
        INDArray padding = paddingMask(tape, t, (int) tk, scores.dataType());
        if (padding != null) {
            Nd4j.exec(new BroadcastAddOp(scores.reshape('c', b, heads, t, tk), padding,
                    scores.reshape('c', b, heads, t, tk), 0, 2, 3));
        }
        return Kernels.get().causalSoftmaxInPlace(scores, t, window);   // the scores become the probabilities
    }

    /**
     * Keys and values that attention puts in front of its own (prefix tuning), set on the tape with
     * {@link Tape#setAttentionPrefix}. Every query sees them; they are used as given (no rotary embedding,
     * as Hugging Face uses past key values), and the positions of the real tokens start after them.
     */
    public interface Prefix {
        /** Number of prefix positions. */
        int length();

        /** Keys and values {@code [batch, kvHeads, length, headDim]} for {@code attention}. */
        INDArray[] keysValues(Tape tape, Attention attention);

        /** Receives the gradients (same shapes) of the keys and values {@link #keysValues} gave {@code attention}. */
        void backward(Tape tape, Attention attention, INDArray dKeys, INDArray dValues);
    }

    /** LLaMA's attention: a bias on all four projections or on none ({@link Options#bias}). */
    public Attention(long hidden, int heads, int kvHeads, int headDim, boolean bias, RotaryEmbedding rope,
                     DataType dtype, double initStd) {
        this(hidden, heads, kvHeads, headDim, Options.bias(bias), rope, dtype, initStd);
    }

    public Attention(long hidden, int heads, int kvHeads, int headDim, Options options, RotaryEmbedding rope,
                     DataType dtype, double initStd) {
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("heads " + heads + " not divisible by kv heads " + kvHeads);
        }
        QkvLayout layout = options.projections().layout();
        if (layout != null && (heads % layout.groupsFor(kvHeads) != 0 || kvHeads % layout.groupsFor(kvHeads) != 0)) {
            throw new IllegalArgumentException("a fused q/k/v projection in " + layout.groupsFor(kvHeads)
                    + " groups needs heads (" + heads + ") and kv heads (" + kvHeads + ") divisible by them");
        }
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.window = options.window();
        this.projections = options.projections();
        this.rope = rope;
        if (projections.fusedQkv() == null) {
            registerModule("q_proj", new Linear(hidden, (long) heads * headDim, options.qkvBias(), dtype, initStd));
            registerModule("k_proj", new Linear(hidden, (long) kvHeads * headDim, options.qkvBias(), dtype, initStd));
            registerModule("v_proj", new Linear(hidden, (long) kvHeads * headDim, options.qkvBias(), dtype, initStd));
        } else {
            registerModule(projections.fusedQkv(), new Linear(hidden, (long) (heads + 2 * kvHeads) * headDim,
                    options.qkvBias(), dtype, initStd));
        }
        registerModule(projections.output(), new Linear((long) heads * headDim, hidden, options.outputBias(), dtype,
                initStd));
        if (options.qkNormEps() > 0) {
            for (String norm : PER_HEAD_NORMS) {
                registerModule(norm, new RMSNorm(headDim, options.qkNormEps(), dtype));
            }
        }
    }

    public int heads() {
        return heads;
    }

    public int kvHeads() {
        return kvHeads;
    }

    public int headDim() {
        return headDim;
    }

    /**
     * The output sections a column split must cut one by one: a fused projection's queries, keys and values in its
     * order when it is one group (else none: whole groups are contiguous).
     */
    public long[] sectionsOf(String child, long outFeatures) {
        if (!child.equals(projections.fusedQkv()) || projections.layout().groupsFor(kvHeads) != 1) {
            return null;
        }
        long kv = outFeatures / ((long) (heads / kvHeads + 2) * headDim) * headDim;
        return projections.layout().order().stream()
                .mapToLong(part -> part == QkvLayout.Part.QUERY ? outFeatures - 2 * kv : kv).toArray();
    }

    /** The groups of the fused q/k/v projection ({@link QkvLayout#groupsFor}), or 0 without one. */
    public int fusedGroups() {
        return projections.layout() == null ? 0 : projections.layout().groupsFor(kvHeads);
    }

    /** The projections and their names (a fused q/k/v projection and its layout, or three). */
    public Projections projections() {
        return projections;
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        int b = tape.batchSize();
        int t = tape.seqLen();
        INDArray[] qkv = projectQkv(tape, x);
        INDArray q = perHead(tape, "q_norm", qkv[0], false);
        INDArray k = perHead(tape, "k_norm", qkv[1], false);
        INDArray v = qkv[2];
        long[] shared = sharedKeyValueHeads(q, k);
        if (shared != null) {
            // more tensor-parallel ranks than key/value heads: every rank holds them all, and uses the ones its
            // query heads read
            k = k.get(all(), interval(shared[0] * headDim, shared[1] * headDim)).dup('c');
            v = v.get(all(), interval(shared[0] * headDim, shared[1] * headDim)).dup('c');
        }
        // this forward's heads: all of them, or a tensor-parallel rank's share
        int heads = (int) (q.size(1) / headDim);
        int kvHeads = (int) (k.size(1) / headDim);
        int g = heads / kvHeads;
        // the 1/sqrt(d) score scale is folded into the (small) queries instead of the [t, t] scores
        q = rope.apply(q, rope.tables(tape, heads, q.dataType()), heads).muli(1.0 / Math.sqrt(headDim));
        k = rope.apply(k, rope.tables(tape, kvHeads, k.dataType()), kvHeads);
        // [b·t, h·d] -> [b, h, t, d] views; a group's g query heads stacked as [b, kv, g·t, d] (a copy when g > 1)
        INDArray qh = grouped(heads(q, b, t, heads), b, kvHeads, g, t);
        INDArray kh = heads(k, b, t, kvHeads);
        INDArray vh = heads(v, b, t, kvHeads);
        if (tape.kvCache() != null) {
            if (tape.attentionPrefix() != null) {
                throw new IllegalStateException("a tape with both a KV cache and an attention prefix:"
                        + " put the prefix into the cache instead");
            }
            INDArray[] full = tape.kvCache().append(this, kh, vh);
            kh = full[0];
            vh = full[1];
        }
        int prefix = 0;
        if (tape.attentionPrefix() != null && shared != null) {
            throw new IllegalStateException("prefix tuning with key/value heads shared by tensor-parallel ranks"
                    + " (more ranks than num_key_value_heads) is not supported");
        }
        if (tape.attentionPrefix() != null) {
            INDArray[] pkv = tape.attentionPrefix().keysValues(tape, this);
            prefix = (int) pkv[0].size(2);
            kh = Nd4j.concat(2, pkv[0].castTo(kh.dataType()), kh);
            vh = Nd4j.concat(2, pkv[1].castTo(vh.dataType()), vh);
        }
        long tk = kh.size(2);
        // the heads' outputs written straight into rows [b·t, h·d] where the layout allows (no group stacking);
        // the [b, h, t, tk] probabilities live in the scratch workspace only: backward recomputes them from q and k
        // (one more q·kᵀ product per layer) instead of keeping the largest activation there is
        INDArray rows = Nd4j.createUninitialized(qh.dataType(), (long) b * t, (long) heads * headDim);
        INDArray queries = qh;
        INDArray keys = kh;
        INDArray values = vh;
        paddingMask(tape, t, (int) tk, qh.dataType());   // cached on the tape before the scratch workspace opens
        Workspaces.scratch(() -> {
            INDArray p = probabilities(tape, queries, keys, b, heads, t);
            INDArray o = Kernels.get().matmul(p, values, false, false, g == 1 ? heads(rows, b, t, heads) : null);
            if (g > 1) {
                heads(rows, b, t, heads).assign(o.reshape('c', b, heads, t, headDim));
            }
            return null;
        });
        tape.save(this, new Saved(tape.stash(qh), tape.stash(kh), tape.stash(vh), prefix, heads, kvHeads, shared));
        return layer(projections.output()).forward(tape, rows);
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        int b = tape.batchSize();
        int t = tape.seqLen();
        Saved s = tape.pop(this);
        int heads = s.heads;
        int kvHeads = s.kvHeads;
        int g = heads / kvHeads;
        INDArray dO = grouped(heads(layer(projections.output()).backward(tape, dy), b, t, heads), b, kvHeads, g, t);
        DataType dt = dO.dataType();
        // the gradients of q, k, v as rows [b·t, ·], written by their products where the layout allows
        INDArray dq = Nd4j.createUninitialized(dt, (long) b * t, (long) heads * headDim);
        INDArray dk = Nd4j.createUninitialized(dt, (long) b * t, (long) kvHeads * headDim);
        INDArray dv = Nd4j.createUninitialized(dt, (long) b * t, (long) kvHeads * headDim);
        boolean direct = s.prefix == 0;   // with a prefix, the key-side products also cover the prefix positions
        INDArray q = tape.restore(s.q);
        INDArray k = tape.restore(s.k);
        INDArray probs = probabilities(tape, q, k, b, heads, t);
        INDArray dP = Kernels.get().matmul(dO, tape.restore(s.v), false, true);
        INDArray dV = Kernels.get().matmul(probs, dO, true, false, direct ? heads(dv, b, t, kvHeads) : null);
        INDArray dS = Kernels.get().softmaxBackward(probs, dP);
        INDArray dQ = Kernels.get().matmul(dS, k, false, false, g == 1 ? heads(dq, b, t, heads) : null);
        INDArray dK = Kernels.get().matmul(dS, q, true, false, direct ? heads(dk, b, t, kvHeads) : null);
        INDArray dKp = null;
        INDArray dVp = null;
        if (!direct) {
            long tk = dK.size(2);
            dKp = dK.get(all(), all(), interval(0, s.prefix), all());
            dVp = dV.get(all(), all(), interval(0, s.prefix), all());
            heads(dk, b, t, kvHeads).assign(dK.get(all(), all(), interval(s.prefix, tk), all()));
            heads(dv, b, t, kvHeads).assign(dV.get(all(), all(), interval(s.prefix, tk), all()));
        }
        if (g > 1) {
            heads(dq, b, t, heads).assign(dQ.reshape('c', b, heads, t, headDim));
        }
        dq.muli(1.0 / Math.sqrt(headDim));
        dq = rope.backward(dq, rope.tables(tape, heads, dq.dataType()), heads);
        dk = rope.backward(dk, rope.tables(tape, kvHeads, dk.dataType()), kvHeads);
        long[] shared = s.shared;
        if (shared != null) {
            dk = widen(dk, shared);
            dv = widen(dv, shared);
        }
        INDArray dx = projectQkvBackward(tape, perHead(tape, "q_norm", dq, true), perHead(tape, "k_norm", dk, true),
                dv);
        if (dKp != null) {
            tape.attentionPrefix().backward(tape, this, dKp, dVp);
        }
        return dx;
    }

    /**
     * With more tensor-parallel ranks than key/value heads, the projections of those are whole on every rank
     * (tensor parallelism replicates them): the range {@code [from, to)} of key/value heads this rank's query
     * heads read; null when the heads are split alike (or not at all).
     */
    private long[] sharedKeyValueHeads(INDArray q, INDArray k) {
        long localHeads = q.size(1) / headDim;
        if (tpSize == 1 || localHeads == heads || k.size(1) / headDim != kvHeads || kvHeads % tpSize == 0) {
            return null;
        }
        long g = heads / kvHeads;
        long first = tpRank * localHeads;
        return new long[] {first / g, (first + localHeads - 1) / g + 1};
    }

    /** The gradient of the key/value heads {@code shared} read, widened with zeros to all of them. */
    private INDArray widen(INDArray d, long[] shared) {
        INDArray all = Nd4j.zeros(d.dataType(), d.size(0), (long) kvHeads * headDim);
        all.get(all(), interval(shared[0] * headDim, shared[1] * headDim)).assign(d);
        return all;
    }

    @Override
    public void tensorParallelApplied(TensorParallelContext ctx) {
        tpRank = ctx.communicator().rank();
        tpSize = ctx.communicator().size();
    }

    /** Queries, keys and values as rows {@code [b·t, n·d]}: three products, or views of one fused product. */
    private INDArray[] projectQkv(Tape tape, INDArray x) {
        if (projections.fusedQkv() == null) {
            return new INDArray[] {layer("q_proj").forward(tape, x), layer("k_proj").forward(tape, x),
                    layer("v_proj").forward(tape, x)};
        }
        INDArray y = layer(projections.fusedQkv()).forward(tape, x);
        INDArray[] parts = fusedParts(y);
        return new INDArray[] {parts[0].dup('c').reshape('c', y.size(0), parts[0].length() / y.size(0)),
                parts[1].dup('c').reshape('c', y.size(0), parts[1].length() / y.size(0)),
                parts[2].dup('c').reshape('c', y.size(0), parts[2].length() / y.size(0))};
    }

    /** The input gradient from those of the queries, keys and values ({@link #projectQkv}'s backward). */
    private INDArray projectQkvBackward(Tape tape, INDArray dq, INDArray dk, INDArray dv) {
        if (projections.fusedQkv() == null) {
            INDArray dx = layer("q_proj").backward(tape, dq);
            dx.addi(layer("k_proj").backward(tape, dk));
            return dx.addi(layer("v_proj").backward(tape, dv));
        }
        INDArray dy = Nd4j.createUninitialized(dq.dataType(), dq.size(0), dq.size(1) + dk.size(1) + dv.size(1));
        INDArray[] parts = fusedParts(dy);
        parts[0].assign(dq.reshape(parts[0].shape()));
        parts[1].assign(dk.reshape(parts[1].shape()));
        parts[2].assign(dv.reshape(parts[2].shape()));
        return layer(projections.fusedQkv()).backward(tape, dy);
    }

    /**
     * Views {@code [rows, groups, n·d]} of a fused projection's rows {@code y} holding the queries, keys and values,
     * each in head order once flattened. The heads are read off the width: a tensor-parallel rank holds whole groups
     * when there are several ({@link QkvLayout}), or its block of each section of a single one.
     */
    private INDArray[] fusedParts(INDArray y) {
        int g = heads / kvHeads;
        long kv = y.size(1) / headDim / (g + 2);      // this forward's key/value heads
        int total = projections.layout().groupsFor(kvHeads);
        long groups = total == 1 ? 1 : total * kv / kvHeads;
        long kvLen = kv / groups * headDim;
        INDArray y3 = y.reshape('c', y.size(0), groups, y.size(1) / groups);
        INDArray[] parts = new INDArray[3];
        long offset = 0;
        for (QkvLayout.Part part : projections.layout().order()) {
            long len = part == QkvLayout.Part.QUERY ? g * kvLen : kvLen;
            parts[part.ordinal()] = y3.get(all(), all(), interval(offset, offset + len));
            offset += len;
        }
        return parts;
    }

    /**
     * The per-head norm {@code norm} (q_norm or k_norm) forward or backward over rows {@code [b·t, n·d]}, each head
     * {@code d} wide; the rows unchanged when the model has none.
     */
    private INDArray perHead(Tape tape, String norm, INDArray rows, boolean backward) {
        if (!children().containsKey(norm)) {
            return rows;
        }
        INDArray flat = rows.reshape('c', rows.length() / headDim, headDim);
        INDArray out = backward ? layer(norm).backward(tape, flat) : layer(norm).forward(tape, flat);
        return out.reshape('c', rows.size(0), rows.size(1));
    }

    /** Rows {@code [b·t, n·d]} seen as heads {@code [b, n, t, d]}: a view, no copy. */
    private INDArray heads(INDArray rows, int b, int t, int n) {
        return rows.reshape('c', b, t, n, headDim).permute(0, 2, 1, 3);
    }

    /** Heads {@code [b, h, t, d]} with each group's {@code g} query heads stacked: {@code [b, kv, g·t, d]} (a copy if g > 1). */
    private INDArray grouped(INDArray heads, int b, int kv, int g, int t) {
        return g == 1 ? heads : heads.dup('c').reshape('c', b, kv, (long) g * t, headDim);
    }

    /**
     * With a padding mask on the tape, the mask {@code [b, t, tk]} to add to the scores (the causal mask folded in;
     * the causal mask alone is the softmax's, {@link Kernels#causalSoftmaxInPlace}), cached on the tape; else null.
     */
    private INDArray paddingMask(Tape tape, int t, int tk, DataType dt) {
        INDArray mask = tape.attentionMask();
        return mask == null ? null : tape.cached(List.of("padded-mask", t, tk, window, dt),
                () -> paddedMask(mask, t, tk, window, dt));
    }

    private static INDArray paddedMask(INDArray mask, int t, int tk, int window, DataType dt) {
        int b = (int) mask.size(0);
        int past = tk - t;
        double[] m = new double[b * t * tk];
        for (int bi = 0; bi < b; bi++) {
            long[] keep = mask.getRow(bi).toLongVector();
            for (int i = 0; i < t; i++) {
                boolean any = false;
                for (int j = 0; j < tk; j++) {
                    if (CausalMask.hidden(i, j, past, window) || keep[j] == 0) {
                        m[(bi * t + i) * tk + j] = CausalMask.MASKED;
                    } else {
                        any = true;
                    }
                }
                if (!any) {
                    // a padding query with nothing to see: let it see itself (its output is never used,
                    // and a row of equal -inf-like scores makes the softmax undefined)
                    m[(bi * t + i) * tk + past + i] = 0;
                }
            }
        }
        return Nd4j.create(m, new long[] {b, t, tk}, 'c').castTo(dt);
    }
}
