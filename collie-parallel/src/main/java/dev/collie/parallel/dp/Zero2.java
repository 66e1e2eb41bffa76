package dev.collie.parallel.dp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;

import java.util.Map;

/**
 * ZeRO stage 2: optimizer state and gradients sharded by parameter. Every trainable parameter has one owner
 * rank; each rank builds its optimizer over {@link #ownedParameters()} only (about 1/dp of the optimizer
 * state), and after a gradient bucket's reduction only the owner keeps the parameter's averaged gradient
 * (about 1/dp of the gradient buffers between steps). Parameters stay replicated: after the optimizer step
 * {@link #afterStep()} broadcasts each one from its owner.
 *
 * <p><b>Split parameters.</b> When whole-parameter ownership would leave a rank more than 5 % off 1/dp of the
 * elements (a large embedding and head on a small model at dp 4), the largest parameters are split into one
 * block of rows per rank ({@link SplitPolicy}, {@link #splitParameters()}): rank r's optimizer gets, under the
 * parameter's name, a {@link Parameter} viewing rows r of the value; the bucket's reduce-scatter hands it
 * that block's averaged gradient; after the step the blocks are all-gathered into the value. The update of
 * a row block is the row block of the update for element-wise rules (AdamW, Lion, Adan, SophiaG, SGD), so
 * nothing changes for them. Fused-backward optimizers (LOMO, AdaLomo, whose factored moments need the whole
 * matrix) need whole parameters: build with {@code splitLargeParameters = false}; with split parameters their
 * first gradient is refused on every rank. The Trainer's gradient-norm clipping must then run over the
 * optimizer's parameters, which hold the blocks' gradients (the whole split parameter holds none on any rank).
 *
 * <p>Communication per step, for S bytes of trainable parameters on n ranks: the gradients, with a
 * reduce-scatter per bucket whose owner sections are balanced ({@code (n−1)/n·S} plus padding) or an
 * all-reduce otherwise ({@code 2(n−1)/n·S}, as plain data parallel), and the broadcasts, {@code (n−1)/n·S}
 * per rank on average (a ring: every rank but the last of each parameter's ring sends it). Details in
 * {@link GradientReducer}; the exact figures for a model are {@link #gradientBytesSentPerStep()} and
 * {@link #broadcastBytesSentPerStep()}.
 *
 * <p>Fused-backward optimizers (LOMO, AdaLomo) built over {@link #ownedParameters()}: every gradient is averaged
 * at once on its route, in the same order on every rank; the owners update inside backward, the others free
 * it, and the updated parameters are broadcast when the step ends ({@link #afterStep()}). Two-pass
 * gradient-norm clipping of a fused optimizer is refused (its norm would cover this rank's parameters only).
 *
 * <p>Gradient clipping under ZeRO-2 needs the norm over all ranks: {@link #globalGradientNorm()}.
 */
public final class Zero2 extends ShardedSync {
    /** With {@link DataParallel#DEFAULT_BUCKET_BYTES}, splitting large parameters. */
    public Zero2(Map<String, Parameter> params, Communicator comm) {
        this(params, comm, DataParallel.DEFAULT_BUCKET_BYTES);
    }

    /**
     * Attaches to the trainable parameters among {@code params} (in registration order; the whole model's, not
     * an optimizer's shard) and checks that every rank has the same parameter names, shapes and types. Splits
     * large parameters into row blocks where whole ones cannot balance the ranks.
     */
    public Zero2(Map<String, Parameter> params, Communicator comm, long bucketBytes) {
        this(params, comm, bucketBytes, true);
    }

    /**
     * As {@link #Zero2(Map, Communicator, long)}; with {@code splitLargeParameters} false every parameter has
     * one owner, as fused-backward optimizers (LOMO, AdaLomo) need.
     */
    public Zero2(Map<String, Parameter> params, Communicator comm, long bucketBytes, boolean splitLargeParameters) {
        this(params, comm, bucketBytes, SplitPolicy.of(splitLargeParameters));
    }

    Zero2(Map<String, Parameter> params, Communicator comm, long bucketBytes, SplitPolicy policy) {
        super(reducer("ZeRO-2", params, comm, bucketBytes, policy, false));
    }

    /** Every parameter's new value, from the rank that updated it (inside backward, for a fused optimizer). */
    @Override
    public void afterStep() {
        grads.broadcastFromOwners(grads.plan().parameters());
    }

    /** Bytes this rank sends per step for {@link #afterStep()}'s broadcasts (and all-gathers of split parameters). */
    public long broadcastBytesSentPerStep() {
        return grads.broadcastBytesSent(grads.plan().parameters());
    }

}
