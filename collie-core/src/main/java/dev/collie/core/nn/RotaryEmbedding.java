package dev.collie.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.api.ops.DynamicCustomOp;

/**
 * Rotary position embedding in Hugging Face's "rotate half" layout: within each head of size d,
 * {@code x' = x·cos + rotate_half(x)·sin}, {@code rotate_half(x) = [-x[d/2:], x[:d/2]]}, with angle
 * {@code position · invFreq[i]} for both halves. The inverse frequencies come from the model config
 * (rope_theta and rope scaling are applied there).
 */
public final class RotaryEmbedding {
    private final double[] invFreq;
    private final int headDim;
    private final java.util.Map<Integer, INDArray> swapIndex = new java.util.concurrent.ConcurrentHashMap<>();

    public RotaryEmbedding(double[] invFreq) {
        this.invFreq = invFreq.clone();
        this.headDim = invFreq.length * 2;
    }

    public int headDim() {
        return headDim;
    }

    /**
     * Tables for rows {@code [batch·seq, heads·headDim]}: {@code {cos, signedSin}} where signedSin carries
     * the minus sign of rotate_half on the first half. Computed once per micro-batch and tape.
     */
    public INDArray[] tables(Tape tape, int heads, DataType dtype) {
        return tape.cached(java.util.List.of(this, heads, dtype), () -> build(tape, heads, dtype));
    }

    private INDArray[] build(Tape tape, int heads, DataType dtype) {
        int b = tape.batchSize();
        int t = tape.seqLen();
        long[][] pos = positions(tape);
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
                    for (int i = 0; i < half; i++) {
                        cos[o + i] = c[i];
                        cos[o + half + i] = c[i];
                        sin[o + i] = -s[i];
                        sin[o + half + i] = s[i];
                    }
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

    /** {@code x·cos + swap(x)·signedSin}, where swap exchanges the two halves of every head. */
    public INDArray apply(INDArray x, INDArray[] tables, int heads) {
        return swapHalves(x, heads).muli(tables[1]).addi(x.mul(tables[0]));
    }

    /** Gradient of {@link #apply}: {@code dy·cos + swap(dy·signedSin)} (swap is its own transpose). */
    public INDArray backward(INDArray dy, INDArray[] tables, int heads) {
        return swapHalves(dy.mul(tables[1]), heads).addi(dy.mul(tables[0]));
    }

    /** Columns permuted so each head's halves trade places: one gather along dimension 1. */
    private INDArray swapHalves(INDArray x, int heads) {
        INDArray idx = swapIndex.computeIfAbsent(heads, h -> {
            int half = headDim / 2;
            int[] i = new int[h * headDim];
            for (int head = 0; head < h; head++) {
                for (int j = 0; j < half; j++) {
                    i[head * headDim + j] = head * headDim + half + j;
                    i[head * headDim + half + j] = head * headDim + j;
                }
            }
            try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                return Nd4j.createFromArray(i);
            }
        });
        INDArray out = Nd4j.createUninitialized(x.dataType(), x.shape());
        Nd4j.exec(DynamicCustomOp.builder("gather").addInputs(x, idx).addOutputs(out).addIntegerArguments(1).build());
        return out;
    }
}
