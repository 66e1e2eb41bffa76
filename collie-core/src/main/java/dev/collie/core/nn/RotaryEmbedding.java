package dev.collie.core.nn;

import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.function.LongFunction;

/**
 * Rotary position embedding in Hugging Face's "rotate half" layout: within each head of size d,
 * {@code x' = x·cos + rotate_half(x)·sin}, {@code rotate_half(x) = [-x[d/2:], x[:d/2]]}, with angle
 * {@code position · invFreq[i]} for both halves. The inverse frequencies come from the model config
 * (rope_theta and rope scaling are applied there).
 */
public final class RotaryEmbedding {
    private final double[] invFreq;
    private final LongFunction<double[]> invFreqForLength;
    private final long maxPositionEmbeddings;
    private final int headDim;
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
        this.invFreq = invFreqForLength.apply(Math.min(maxPositionEmbeddings, Integer.MAX_VALUE)).clone();
        this.invFreqForLength = invFreqForLength;
        this.maxPositionEmbeddings = maxPositionEmbeddings;
        this.headDim = invFreq.length * 2;
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
        int half = headDim / 2;
        int width = heads * headDim;
        // float, as the values are (below): half the Java garbage of doubles and no float64 staging array
        float[] cos = new float[b * t * width];
        float[] sin = new float[b * t * width];
        float[] c = new float[half];
        float[] s = new float[half];
        for (int bi = 0; bi < b; bi++) {
            for (int ti = 0; ti < t; ti++) {
                long p = pos[bi][ti];
                for (int i = 0; i < half; i++) {
                    // as Hugging Face computes the tables whatever the model's dtype: inv_freq, angles and
                    // their cos/sin in float32 (so a float64 model matches a float64 transformers model)
                    float angle = (float) p * (float) invFreq[i];
                    c[i] = (float) Math.cos(angle);
                    s[i] = (float) Math.sin(angle);
                }
                int row = (bi * t + ti) * width;
                for (int h = 0; h < heads; h++) {
                    int o = row + h * headDim;
                    System.arraycopy(c, 0, cos, o, half);
                    System.arraycopy(c, 0, cos, o + half, half);
                    System.arraycopy(s, 0, sin, o, half);
                    System.arraycopy(s, 0, sin, o + half, half);
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
        return Kernels.get().rotary(x, tables[0], tables[1], heads, false);
    }

    /** Gradient of {@link #apply}: the rotation back (the transposed rotation). */
    public INDArray backward(INDArray dy, INDArray[] tables, int heads) {
        return Kernels.get().rotary(dy, tables[0], tables[1], heads, true);
    }
}
