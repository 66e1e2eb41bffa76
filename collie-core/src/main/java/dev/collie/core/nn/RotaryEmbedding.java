package dev.collie.core.nn;

import dev.collie.core.tensor.Kernels;
import dev.collie.core.tensor.RotaryPairs;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.function.LongFunction;

/**
 * Rotary position embedding: within each head of size d, pair i of dimensions is rotated by the angle
 * {@code position · invFreq[i]}. In Hugging Face's "rotate half" layout ({@link RotaryPairs#HALVES}) the pairs are
 * (i, i + d/2) and cover the head; with {@link RotaryPairs#INTERLEAVED} they are (2i, 2i + 1) and cover the first
 * {@code 2·invFreq.length} dimensions, the rest passing through (ChatGLM rotates half of each head). The inverse
 * frequencies come from the model config (rope_theta and rope scaling are applied there).
 */
public final class RotaryEmbedding {
    private final double[] invFreq;
    private final LongFunction<double[]> invFreqForLength;
    private final long maxPositionEmbeddings;
    private final int headDim;
    private final RotaryPairs pairs;
    /** Tables of unpadded batches: they depend only on the layout, so every step reuses them. */
    private final LayoutCache<INDArray[]> unpadded = new LayoutCache<>(16);

    /** Fixed inverse frequencies, whatever the sequence length. */
    public RotaryEmbedding(double[] invFreq) {
        this(n -> invFreq, Long.MAX_VALUE);
    }

    /**
     * Inverse frequencies that depend on the length once it passes {@code maxPositionEmbeddings} (dynamic NTK
     * scaling): a forward whose furthest position is {@code p} uses {@code invFreqForLength(p + 1)} when
     * {@code p + 1 > maxPositionEmbeddings}, as transformers' dynamic rope does for a model that has not seen
     * a longer sequence before.
     */
    public RotaryEmbedding(LongFunction<double[]> invFreqForLength, long maxPositionEmbeddings) {
        this(invFreqForLength, maxPositionEmbeddings, RotaryPairs.HALVES, 0);
    }

    /**
     * As {@link #RotaryEmbedding(LongFunction, long)}, with the pairs of {@code pairs}; {@code headDim} 0 means
     * {@code 2·invFreq.length} (the whole head rotates), a larger one leaves the dimensions past those
     * (interleaved pairs only).
     */
    public RotaryEmbedding(LongFunction<double[]> invFreqForLength, long maxPositionEmbeddings, RotaryPairs pairs,
                           int headDim) {
        this.invFreq = invFreqForLength.apply(Math.min(maxPositionEmbeddings, Integer.MAX_VALUE)).clone();
        this.invFreqForLength = invFreqForLength;
        this.maxPositionEmbeddings = maxPositionEmbeddings;
        this.pairs = pairs;
        this.headDim = headDim == 0 ? invFreq.length * 2 : headDim;
        if (this.headDim < invFreq.length * 2 || (pairs == RotaryPairs.HALVES && this.headDim != invFreq.length * 2)) {
            throw new IllegalArgumentException(invFreq.length + " rotated pairs in heads of " + this.headDim
                    + " as " + pairs);
        }
    }

    public int headDim() {
        return headDim;
    }

    /**
     * Tables for rows {@code [batch·seq, heads·headDim]}: {@code {cos, sin}} of each row's angles, the same in both
     * halves of every head. Computed once per micro-batch and tape.
     */
    public INDArray[] tables(Tape tape, int heads, DataType dtype) {
        if (tape.attentionMask() == null) {
            // positions past .. past + t − 1 on every row: the same tables whenever the layout repeats
            return unpadded.get(List.of(tape.batchSize(), tape.seqLen(), tape.pastLength(), heads, dtype),
                    () -> build(tape, heads, dtype));
        }
        return tape.cached(List.of(this, heads, dtype), () -> build(tape, heads, dtype));
    }

    private INDArray[] build(Tape tape, int heads, DataType dtype) {
        int b = tape.batchSize();
        int t = tape.seqLen();
        long[][] pos = positions(tape);
        long length = 0;
        for (long[] row : pos) {
            for (long p : row) {
                length = Math.max(length, p + 1);
            }
        }
        double[] invFreq = length > maxPositionEmbeddings ? invFreqForLength.apply(length) : this.invFreq;
        int width = heads * headDim;
        // float, as the values are (below): half the Java garbage of doubles and no float64 staging array
        float[] cos = new float[b * t * width];
        float[] sin = new float[b * t * width];
        // one head's values: each pair's two dimensions share their angle; unrotated dimensions cos 1, sin 0
        float[] c = new float[headDim];
        float[] s = new float[headDim];
        java.util.Arrays.fill(c, 1f);
        for (int bi = 0; bi < b; bi++) {
            for (int ti = 0; ti < t; ti++) {
                long p = pos[bi][ti];
                for (int i = 0; i < invFreq.length; i++) {
                    // as Hugging Face computes the tables whatever the model's dtype: inv_freq, angles and
                    // their cos/sin in float32 (so a float64 model matches a float64 transformers model)
                    float angle = (float) p * (float) invFreq[i];
                    float ci = (float) Math.cos(angle);
                    float si = (float) Math.sin(angle);
                    c[pairs.first(i, headDim)] = ci;
                    c[pairs.second(i, headDim)] = ci;
                    s[pairs.first(i, headDim)] = si;
                    s[pairs.second(i, headDim)] = si;
                }
                int row = (bi * t + ti) * width;
                for (int h = 0; h < heads; h++) {
                    System.arraycopy(c, 0, cos, row + h * headDim, headDim);
                    System.arraycopy(s, 0, sin, row + h * headDim, headDim);
                }
            }
        }
        return new INDArray[] {table(cos, (long) b * t, width, dtype), table(sin, (long) b * t, width, dtype)};
    }

    private static INDArray table(float[] values, long rows, long cols, DataType dtype) {
        INDArray t = Nd4j.create(values, new long[] {rows, cols}, 'c');
        return dtype == DataType.FLOAT ? t : t.castTo(dtype);
    }

    /**
     * Position of each token: past length + index, or with a padding mask the count of real tokens before
     * it (Hugging Face's {@code cumsum(mask) - 1}), so left-padded prompts start at position 0.
     */
    static long[][] positions(Tape tape) {
        int b = tape.batchSize();
        int t = tape.seqLen();
        int past = tape.pastLength();
        long[][] pos = new long[b][t];
        INDArray mask = tape.attentionMask();
        for (int bi = 0; bi < b; bi++) {
            if (mask == null) {
                for (int ti = 0; ti < t; ti++) {
                    pos[bi][ti] = past + ti;
                }
            } else {
                long[] m = mask.getRow(bi).toLongVector();
                long count = 0;
                for (int k = 0; k < past + t; k++) {
                    count += m[k] != 0 ? 1 : 0;
                    if (k >= past) {
                        pos[bi][k - past] = m[k] != 0 ? count - 1 : 1;
                    }
                }
            }
        }
        return pos;
    }

    /** Rows {@code x} {@code [batch·seq, heads·headDim]} rotated by the angles of {@code tables} ({@link #tables}). */
    public INDArray apply(INDArray x, INDArray[] tables, int heads) {
        return Kernels.get().rotary(x, tables[0], tables[1], heads, pairs, false);
    }

    /** Gradient of {@link #apply}: the rotation back (the transposed rotation). */
    public INDArray backward(INDArray dy, INDArray[] tables, int heads) {
        return Kernels.get().rotary(dy, tables[0], tables[1], heads, pairs, true);
    }
}
