package dev.collie.core.nn;

import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.Arrays;

/**
 * Next-token cross-entropy: logits of position t predict the label at t+1; labels equal to
 * {@link #IGNORE_INDEX} (-100) are not counted; the mean is over counted tokens. This is CoLLiE's
 * GPTLMLoss and Hugging Face's causal-LM loss. Subclasses change how the cross-entropy of logits rows is
 * computed (tensor parallelism: over a vocabulary shard, never gathering the logits), and how targets are
 * sampled from the logits' softmax ({@link #sampleTargets}, for SophiaG's Hessian estimate).
 */
public class CausalLmLoss {
    public static final int IGNORE_INDEX = -100;

    /** Targets for rows {@code [b·t]}: {@code labels[b, t+1]}, and ignore for each row's last position. */
    public static INDArray shiftedTargets(INDArray labels) {
        int b = (int) labels.size(0);
        int t = (int) labels.size(1);
        long[] out = new long[b * t];
        for (int bi = 0; bi < b; bi++) {
            long[] row = labels.getRow(bi).toLongVector();
            for (int ti = 0; ti < t; ti++) {
                out[bi * t + ti] = ti + 1 < t ? row[ti + 1] : IGNORE_INDEX;
            }
        }
        return Nd4j.createFromArray(out);
    }

    /** Number of tokens that count towards the loss for {@code labels}. */
    public static long countedTokens(INDArray labels) {
        return shiftedTargets(labels).neq(IGNORE_INDEX).castTo(DataType.INT64).sumNumber().longValue();
    }

    /**
     * Mean loss of {@code logits} {@code [b·t, vocab]} against {@code labels} {@code [b, t]}. On training
     * tapes the gradient is computed in place: the logits array is consumed (overwritten).
     */
    public double forward(Tape tape, INDArray logits, INDArray labels) {
        return forwardTargets(tape, logits, shiftedTargets(labels));
    }

    /**
     * As {@link #forward}, against a target for every logits row (an id, or {@link #IGNORE_INDEX}) instead of
     * labels shifted by one position: e.g. targets drawn by {@link #sampleTargets}.
     */
    public double forwardTargets(Tape tape, INDArray logits, INDArray targets) {
        // the gradient comes out scaled as backward will want it (when the tape says): no pass of its own there
        double scale = tape.lossGradScale() != 0 ? tape.lossGradScale() : 1.0;
        INDArray[] r = crossEntropy(logits, targets, tape.isTraining(), scale);
        if (r[1] != null) {
            tape.save(this, new Saved(r[1], scale));
        }
        return r[0].getDouble(0);
    }

    /** The logits' gradient, already multiplied by {@code scale}. */
    private record Saved(INDArray grad, double scale) {
    }

    // ---- targets sampled from the model's own distribution (SophiaG's Gauss-Newton-Bartlett estimate) ----

    /**
     * The seeds of {@link #sampleTargets} for the rows of a batch: a hash of {@code seed} and the row's real
     * tokens (those whose {@code attentionMask} is 1), so a sequence draws the same noise whichever micro-batch,
     * data-parallel replica, worker thread or padding it comes with. Two equal sequences in one step draw the
     * same noise.
     */
    public static long[] sampleSeeds(long seed, INDArray inputIds, INDArray attentionMask) {
        int rows = (int) inputIds.size(0);
        long[] out = new long[rows];
        for (int b = 0; b < rows; b++) {
            long[] ids = inputIds.getRow(b).toLongVector();
            long[] m = attentionMask == null ? null : attentionMask.getRow(b).toLongVector();
            long h = mix(seed ^ 0x9E3779B97F4A7C15L);
            long n = 0;
            for (int t = 0; t < ids.length; t++) {
                if (m == null || m[t] == 1) {
                    h = mix(h * 31 + ids[t]);
                    n++;
                }
            }
            out[b] = mix(h + n);
        }
        return out;
    }

    /** SplitMix64's finaliser. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Positions whose {@code mask} entry is 1 (the positions {@link #sampleTargets} draws a target for). */
    public static long sampledPositions(INDArray mask) {
        return mask.eq(1).castTo(DataType.INT64).sumNumber().longValue();
    }

    /**
     * A target drawn from {@code softmax(logits)} for every position whose {@code mask} {@code [b, t]} entry is 1
     * ({@link #IGNORE_INDEX} elsewhere: padding, and the virtual tokens {@code labelsFor} marks -100), by
     * Gumbel-max: {@code argmax(logits + g)}, {@code g = −log(−log u)}, {@code u} uniform. The real positions of
     * batch row {@code b} take consecutive rows of one {@code [positions, vocab]} draw seeded by
     * {@code seeds[b]} (see {@link #sampleSeeds}). Returns {@code [b·t]} ids; the logits are not changed.
     * Subclasses that hold a vocabulary shard of the logits draw the same noise and take its columns.
     */
    public INDArray sampleTargets(INDArray logits, INDArray mask, long[] seeds) {
        INDArray noisy = gumbelPerturbed(logits, mask, seeds, logits.size(1), 0);
        return masked(argmax(noisy), mask);
    }

    /**
     * {@code logits} {@code [b·t, v]} plus the Gumbel noise of {@link #sampleTargets} at the sampled positions:
     * the noise of vocabulary ids {@code [from, from + v)} of a {@code vocab}-token vocabulary (a tensor-parallel
     * shard takes its columns of the whole vocabulary's draw). A new array.
     */
    protected static INDArray gumbelPerturbed(INDArray logits, INDArray mask, long[] seeds, long vocab, long from) {
        int b = (int) mask.size(0);
        int t = (int) mask.size(1);
        long width = logits.size(1);
        if (logits.size(0) != (long) b * t || seeds.length != b || from + width > vocab) {
            throw new IllegalArgumentException("logits " + Arrays.toString(logits.shape()) + " (columns from "
                    + from + " of " + vocab + ") for a mask " + Arrays.toString(mask.shape()) + " and "
                    + seeds.length + " seeds");
        }
        INDArray noisy = logits.dup('c');
        for (int r = 0; r < b; r++) {
            long[] m = mask.getRow(r).toLongVector();
            int n = 0;
            for (long v : m) {
                n += v == 1 ? 1 : 0;
            }
            if (n == 0) {
                continue;
            }
            int[] pos = new int[n];
            for (int i = 0, j = 0; i < t; i++) {
                if (m[i] == 1) {
                    pos[j++] = i;
                }
            }
            INDArray u = Nd4j.createUninitialized(logits.dataType(), n, vocab);
            Nd4j.rand(u, seeds[r]);
            // argmax(logits + g) with g = -log(-log u) is a sample of softmax(logits)
            INDArray g = Transforms.log(Transforms.log(u, false).negi(), false).negi();
            if (from != 0 || width != vocab) {
                g = g.get(NDArrayIndex.all(), NDArrayIndex.interval(from, from + width));
            }
            long base = (long) r * t;
            if (pos[n - 1] - pos[0] + 1 == n) {
                noisy.get(NDArrayIndex.interval(base + pos[0], base + pos[0] + n), NDArrayIndex.all()).addi(g);
            } else {
                for (int j = 0; j < n; j++) {
                    noisy.getRow(base + pos[j]).addi(g.getRow(j));
                }
            }
        }
        return noisy;
    }

    /** The column of each row's maximum (the first on ties). */
    protected static long[] argmax(INDArray x) {
        return Nd4j.exec(DynamicCustomOp.builder("argmax").addInputs(x).addIntegerArguments(1).build())[0]
                .castTo(DataType.INT64).toLongVector();
    }

    /** {@code ids} as targets, {@link #IGNORE_INDEX} where {@code mask} is not 1. */
    protected static INDArray masked(long[] ids, INDArray mask) {
        long[] m = mask.reshape(mask.length()).toLongVector();
        for (int i = 0; i < ids.length; i++) {
            if (m[i] != 1) {
                ids[i] = IGNORE_INDEX;
            }
        }
        return Nd4j.createFromArray(ids);
    }

    /**
     * Mean cross-entropy of logits rows against {@code targets} (ids, or {@link #IGNORE_INDEX}) as a scalar,
     * and with {@code withGradient} the gradient of that mean with respect to the logits (which it may
     * overwrite), else null.
     */
    public final INDArray[] crossEntropy(INDArray logits, INDArray targets, boolean withGradient) {
        return crossEntropy(logits, targets, withGradient, 1.0);
    }

    /** {@link #crossEntropy(INDArray, INDArray, boolean)} with the gradient multiplied by {@code gradScale}. */
    public INDArray[] crossEntropy(INDArray logits, INDArray targets, boolean withGradient, double gradScale) {
        return Kernels.get().crossEntropy(logits, targets, IGNORE_INDEX, withGradient, gradScale);
    }

    /** Gradient of the loss times {@code scale} (e.g. 1/gradAccum) with respect to the logits. */
    public INDArray backward(Tape tape, double scale) {
        Saved s = tape.pop(this);
        return scale == s.scale ? s.grad : s.grad.muli(scale / s.scale);
    }
}
