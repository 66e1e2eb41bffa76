package dev.collie.core.nn;

import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/**
 * Causal self-attention with rotary embeddings and grouped-query attention (LLaMA's {@code self_attn}):
 * {@code heads} query heads share {@code kvHeads} key/value heads, {@code heads/kvHeads} each.
 * Rows in and out are {@code [batch·seq, hidden]}; the tape gives batch, length, padding mask and KV cache.
 * GQA costs no copy: the queries of one group are laid out as one taller matrix against their shared keys.
 * The heads a forward computes are read off its projections' widths, so when tensor parallelism gives the
 * projections a share of the heads, attention runs over that share unchanged.
 */
public final class Attention extends Module implements Layer {
    private static final double MASKED = -1e9;
    /** Causal masks by (t, tk, dtype): the same for every unpadded batch of a length. */
    private static final LayoutCache<INDArray> CAUSAL = new LayoutCache<>(16);

    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final RotaryEmbedding rope;

    /** What backward needs; {@code prefix} is the number of leading key positions that came from a {@link Prefix}. */
    private record Saved(INDArray q, INDArray k, INDArray v, INDArray p, int prefix, int heads, int kvHeads) {
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

    public Attention(long hidden, int heads, int kvHeads, int headDim, boolean bias, RotaryEmbedding rope,
                     DataType dtype, double initStd) {
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("heads " + heads + " not divisible by kv heads " + kvHeads);
        }
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.rope = rope;
        registerModule("q_proj", new Linear(hidden, (long) heads * headDim, bias, dtype, initStd));
        registerModule("k_proj", new Linear(hidden, (long) kvHeads * headDim, bias, dtype, initStd));
        registerModule("v_proj", new Linear(hidden, (long) kvHeads * headDim, bias, dtype, initStd));
        registerModule("o_proj", new Linear((long) heads * headDim, hidden, bias, dtype, initStd));
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

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        int b = tape.batchSize();
        int t = tape.seqLen();
        INDArray q = layer("q_proj").forward(tape, x);
        INDArray k = layer("k_proj").forward(tape, x);
        INDArray v = layer("v_proj").forward(tape, x);
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
        if (tape.attentionPrefix() != null) {
            INDArray[] pkv = tape.attentionPrefix().keysValues(tape, this);
            prefix = (int) pkv[0].size(2);
            kh = Nd4j.concat(2, pkv[0].castTo(kh.dataType()), kh);
            vh = Nd4j.concat(2, pkv[1].castTo(vh.dataType()), vh);
        }
        long tk = kh.size(2);
        INDArray scores = Kernels.get().matmul(qh, kh, false, true);
        addMask(tape, scores.reshape('c', b, heads, t, tk), t, (int) tk);
        INDArray p = Kernels.get().softmax(scores);
        // the heads' outputs written straight into rows [b·t, h·d] where the layout allows (no group stacking)
        INDArray rows = Nd4j.createUninitialized(p.dataType(), (long) b * t, (long) heads * headDim);
        INDArray o = Kernels.get().matmul(p, vh, false, false, g == 1 ? heads(rows, b, t, heads) : null);
        if (g > 1) {
            heads(rows, b, t, heads).assign(o.reshape('c', b, heads, t, headDim));
        }
        tape.save(this, new Saved(qh, kh, vh, p, prefix, heads, kvHeads));
        return layer("o_proj").forward(tape, rows);
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        int b = tape.batchSize();
        int t = tape.seqLen();
        Saved s = tape.pop(this);
        int heads = s.heads;
        int kvHeads = s.kvHeads;
        int g = heads / kvHeads;
        INDArray dO = grouped(heads(layer("o_proj").backward(tape, dy), b, t, heads), b, kvHeads, g, t);
        DataType dt = dO.dataType();
        // the gradients of q, k, v as rows [b·t, ·], written by their products where the layout allows
        INDArray dq = Nd4j.createUninitialized(dt, (long) b * t, (long) heads * headDim);
        INDArray dk = Nd4j.createUninitialized(dt, (long) b * t, (long) kvHeads * headDim);
        INDArray dv = Nd4j.createUninitialized(dt, (long) b * t, (long) kvHeads * headDim);
        boolean direct = s.prefix == 0;   // with a prefix, the key-side products also cover the prefix positions
        INDArray dP = Kernels.get().matmul(dO, s.v, false, true);
        INDArray dV = Kernels.get().matmul(s.p, dO, true, false, direct ? heads(dv, b, t, kvHeads) : null);
        INDArray dS = Kernels.get().softmaxBackward(s.p, dP);
        INDArray dQ = Kernels.get().matmul(dS, s.k, false, false, g == 1 ? heads(dq, b, t, heads) : null);
        INDArray dK = Kernels.get().matmul(dS, s.q, true, false, direct ? heads(dk, b, t, kvHeads) : null);
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
        INDArray dx = layer("q_proj").backward(tape, dq);
        dx.addi(layer("k_proj").backward(tape, dk));
        dx.addi(layer("v_proj").backward(tape, dv));
        if (dKp != null) {
            tape.attentionPrefix().backward(tape, this, dKp, dVp);
        }
        return dx;
    }

    /** Rows {@code [b·t, n·d]} seen as heads {@code [b, n, t, d]}: a view, no copy. */
    private INDArray heads(INDArray rows, int b, int t, int n) {
        return rows.reshape('c', b, t, n, headDim).permute(0, 2, 1, 3);
    }

    /** Heads {@code [b, h, t, d]} with each group's {@code g} query heads stacked: {@code [b, kv, g·t, d]} (a copy if g > 1). */
    private INDArray grouped(INDArray heads, int b, int kv, int g, int t) {
        return g == 1 ? heads : heads.dup('c').reshape('c', b, kv, (long) g * t, headDim);
    }

    /** Adds the causal (and padding) mask to scores {@code [b, h, t, tk]}: query i sees keys up to past + i. */
    private static void addMask(Tape tape, INDArray scores, int t, int tk) {
        INDArray mask = tape.attentionMask();
        DataType dt = scores.dataType();
        if (mask == null) {
            INDArray causal = CAUSAL.get(List.of(t, tk, dt), () -> causalMask(t, tk, dt));
            Nd4j.exec(new BroadcastAddOp(scores, causal, scores, 2, 3));
        } else {
            INDArray full = tape.cached(List.of("padded-mask", t, tk, dt), () -> paddedMask(mask, t, tk, dt));
            Nd4j.exec(new BroadcastAddOp(scores, full, scores, 0, 2, 3));
        }
    }

    private static INDArray causalMask(int t, int tk, DataType dt) {
        int past = tk - t;
        double[] m = new double[t * tk];
        for (int i = 0; i < t; i++) {
            for (int j = past + i + 1; j < tk; j++) {
                m[i * tk + j] = MASKED;
            }
        }
        return Nd4j.create(m, new long[] {t, tk}, 'c').castTo(dt);
    }

    private static INDArray paddedMask(INDArray mask, int t, int tk, DataType dt) {
        int b = (int) mask.size(0);
        int past = tk - t;
        double[] m = new double[b * t * tk];
        for (int bi = 0; bi < b; bi++) {
            long[] keep = mask.getRow(bi).toLongVector();
            for (int i = 0; i < t; i++) {
                boolean any = false;
                for (int j = 0; j < tk; j++) {
                    if (j > past + i || keep[j] == 0) {
                        m[(bi * t + i) * tk + j] = MASKED;
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
