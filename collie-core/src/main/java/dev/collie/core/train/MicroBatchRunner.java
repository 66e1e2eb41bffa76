package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.data.Batch;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Tape;
import dev.collie.core.tensor.ActivationDtype;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;

/**
 * Runs the forward and backward passes of one optimizer step for the {@link Trainer}: {@link StepRunner}
 * on one rank (or one tensor-parallel group), a pipeline schedule when the model is cut into stages.
 */
public interface MicroBatchRunner extends AutoCloseable {
    /**
     * Forward and backward of the step's micro-batches, each gradient scaled by 1/{@code micro.size()}, the
     * parameters' hooks firing on the last; returns the mean of the micro-batch losses, the same value on
     * every rank of the model.
     */
    double forwardBackward(List<Batch> micro);

    /**
     * As {@link #forwardBackward}, but against targets drawn from the model's own softmax instead of the labels
     * (SophiaG's Gauss-Newton-Bartlett Hessian estimate): at every position whose attention mask is 1, by
     * {@link dev.collie.core.nn.CausalLmLoss#sampleTargets} with the seeds
     * {@link dev.collie.core.nn.CausalLmLoss#sampleSeeds sampleSeeds(seed, ...)} of the micro-batch's rows, so the
     * draws do not depend on how rows are split over micro-batches, replicas, workers or ranks. Each micro-batch's
     * loss is the mean over its sampled positions, its gradient scaled by 1/{@code micro.size()}; the
     * parameters' hooks fire on the last. Returns the mean of the micro-batch losses.
     */
    default double forwardBackwardSampled(List<Batch> micro, long seed) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " cannot run a backward pass against"
                + " targets sampled from the model");
    }

    /** The token-mean loss of one batch, forward only (evaluation); the same value on every rank of the model. */
    double loss(Batch batch);

    /**
     * Stores the activations each training forward keeps for backward as {@code dtype} from the next step on
     * ({@link Tape#stash}); a runner that cannot refuses anything but fp32.
     */
    default void setActivationDtype(ActivationDtype dtype) {
        if (dtype != ActivationDtype.FP32) {
            throw new CollieException("activation_dtype " + dtype.label() + ": " + getClass().getSimpleName()
                    + " keeps its activations in fp32 (bf16 activations apply to runs without pipeline parallelism)");
        }
    }

    /** Stops any threads; a later call starts new ones. */
    @Override
    void close();

    /** {@code tape}, given {@code b}'s attention mask where some position of {@code b} is padding (else none). */
    static Tape withPaddingMask(Tape tape, Batch b) {
        if (b.tokenCount() < (long) b.rows() * b.seqLen()) {
            tape.setAttentionMask(b.attentionMask());
        }
        return tape;
    }

    /**
     * The loss of micro-batch {@code b}'s {@code logits} by {@code lossFn} (which keeps what its backward needs):
     * against {@code model}'s labels for {@code b}, or, with {@code seed}, against targets sampled from the logits
     * as {@link #forwardBackwardSampled} describes.
     */
    static double microBatchLoss(LanguageModel model, CausalLmLoss lossFn, Tape tape, INDArray logits, Batch b,
                                 Long seed) {
        if (seed == null) {
            return lossFn.forward(tape, logits, model.labelsFor(b.labels()));
        }
        // rows the model added (prompt tuning's virtual tokens) come out of labelsFor as -100: not sampled
        INDArray targets = lossFn.sampleTargets(logits, model.labelsFor(b.attentionMask()),
                CausalLmLoss.sampleSeeds(seed, b.inputIds(), b.attentionMask()));
        return lossFn.forwardTargets(tape, logits, targets);
    }
}
