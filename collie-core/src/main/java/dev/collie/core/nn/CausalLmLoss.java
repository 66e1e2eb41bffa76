package dev.collie.core.nn;

import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Next-token cross-entropy: logits of position t predict the label at t+1; labels equal to
 * {@link #IGNORE_INDEX} (-100) are not counted; the mean is over counted tokens. This is CoLLiE's
 * GPTLMLoss and Hugging Face's causal-LM loss. Subclasses change how the cross-entropy of logits rows is
 * computed (tensor parallelism: over a vocabulary shard, never gathering the logits).
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
        return shiftedTargets(labels).neq(IGNORE_INDEX).castTo(org.nd4j.linalg.api.buffer.DataType.INT64).sumNumber().longValue();
    }

    /**
     * Mean loss of {@code logits} {@code [b·t, vocab]} against {@code labels} {@code [b, t]}. On training
     * tapes the gradient is computed in place: the logits array is consumed (overwritten).
     */
    public double forward(Tape tape, INDArray logits, INDArray labels) {
        INDArray[] r = crossEntropy(logits, shiftedTargets(labels), tape.isTraining());
        if (r[1] != null) {
            tape.save(this, r[1]);
        }
        return r[0].getDouble(0);
    }

    /**
     * Mean cross-entropy of logits rows against {@code targets} (ids, or {@link #IGNORE_INDEX}) as a scalar,
     * and with {@code withGradient} the gradient of that mean with respect to the logits (which it may
     * overwrite), else null.
     */
    public INDArray[] crossEntropy(INDArray logits, INDArray targets, boolean withGradient) {
        return Kernels.get().crossEntropy(logits, targets, IGNORE_INDEX, withGradient);
    }

    /** Gradient of the loss times {@code scale} (e.g. 1/gradAccum) with respect to the logits. */
    public INDArray backward(Tape tape, double scale) {
        INDArray d = tape.pop(this);
        return scale == 1.0 ? d : d.muli(scale);
    }
}
