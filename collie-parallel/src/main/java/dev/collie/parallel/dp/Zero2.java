package dev.collie.parallel.dp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.GradientSync;
import dev.collie.core.nn.Parameter;

import java.util.Map;

/**
 * ZeRO stage 2: optimizer state and gradients sharded by parameter. Every trainable parameter has one owner
 * rank; each rank builds its optimizer over {@link #ownedParameters()} only (about 1/dp of the optimizer
 * state), and after a gradient bucket's reduction only the owner keeps the parameter's averaged gradient
 * (about 1/dp of the gradient buffers between steps). Parameters stay replicated: after the optimizer step
 * {@link #afterStep()} broadcasts each one from its owner.
 *
 * <p>Communication per step, for S bytes of trainable parameters on n ranks: the gradients, with a
 * reduce-scatter per bucket whose owner sections are balanced ({@code (n−1)/n·S} plus padding) or an
 * all-reduce otherwise ({@code 2(n−1)/n·S}, as plain data parallel), and the broadcasts, {@code (n−1)/n·S}
 * per rank on average (a ring: every rank but the last of each parameter's ring sends it). Details in
 * {@link ShardedGradients}; the exact figures for a model are {@link #gradientBytesSentPerStep()} and
 * {@link #broadcastBytesSentPerStep()}.
 *
 * <p>Fused-backward optimizers (LOMO, AdaLomo) built over {@link #ownedParameters()} work with the Trainer
 * as it is: the owned parameters' gradients are averaged in {@link #reduce}, the others' in this object's
 * hook (then freed), in the same order on every rank; the owners update inside backward, and the updated
 * parameters are broadcast when the step ends ({@link #afterStep()}, or, since the Trainer does not call it
 * for fused optimizers, the step's {@link #average} of the loss). Two-pass gradient-norm clipping of a fused
 * optimizer is refused (its norm would cover this rank's parameters only).
 *
 * <p>Gradient clipping under ZeRO-2 needs the norm over all ranks: {@link #globalGradientNorm()}.
 */
public final class Zero2 implements GradientSync, AutoCloseable {
    private final ShardedGradients grads;

    /** With {@link DataParallel#DEFAULT_BUCKET_BYTES}. */
    public Zero2(Map<String, Parameter> params, Communicator comm) {
        this(params, comm, DataParallel.DEFAULT_BUCKET_BYTES);
    }

    /**
     * Attaches to the trainable parameters among {@code params} (in registration order; the whole model's, not
     * an optimizer's shard) and checks that every rank has the same parameter names, shapes and types.
     */
    public Zero2(Map<String, Parameter> params, Communicator comm, long bucketBytes) {
        this.grads = new ShardedGradients("ZeRO-2", params, comm, bucketBytes);
    }

    /** The parameters this rank updates: give only these to its optimizer. */
    public Map<String, Parameter> ownedParameters() {
        return grads.ownedParameters();
    }

    /** The rank that owns (updates, and keeps the gradient of) trainable parameter {@code p}. */
    public int owner(Parameter p) {
        return grads.owner(p);
    }

    @Override
    public int rank() {
        return grads.rank();
    }

    @Override
    public int size() {
        return grads.size();
    }

    /** Waits for every bucket's reduction: each owned parameter then holds its averaged gradient, the others none. */
    @Override
    public void finish() {
        grads.finish();
    }

    /** The mean over the ranks; first completes a fused step's broadcasts (see the class comment). */
    @Override
    public double average(double value) {
        flushFusedStep();
        return grads.average(value);
    }

    @Override
    public void reduce(Parameter p) {
        grads.reduceNow(p, false);
    }

    @Override
    public boolean shardsOptimizerState() {
        return true;
    }

    /**
     * True: after {@link #finish()} a rank holds only its owned parameters' gradients, so a global gradient
     * norm needs all ranks ({@link #globalGradientNorm()}).
     */
    @Override
    public boolean shardsGradients() {
        return true;
    }

    /** Every parameter's new value, from the rank that updated it. */
    @Override
    public void afterStep() {
        if (grads.fusedMode()) {
            flushFusedStep();
        } else {
            grads.broadcastFromOwners(grads.parameters());
        }
    }

    private void flushFusedStep() {
        if (grads.endFusedStep()) {
            grads.broadcastFromOwners(grads.parameters());
        }
    }

    /** The L2 norm of the whole averaged gradient (a collective: call it on every rank after {@link #finish()}). */
    public double globalGradientNorm() {
        return grads.globalGradientNorm();
    }

    /** Values, gradient buffers and communication buffers this rank holds for the trainable parameters now. */
    public RankMemory memory() {
        return grads.memory();
    }

    /** {@link #memory()} in one figure. */
    public long residentBytes() {
        return memory().total();
    }

    public int bucketCount() {
        return grads.bucketCount();
    }

    /** Buckets reduced with a reduce-scatter; the others use an all-reduce. */
    public int scatteredBucketCount() {
        return grads.scatteredBucketCount();
    }

    /** Bytes this rank sends per step for the gradients (step-style optimizers). */
    public long gradientBytesSentPerStep() {
        return grads.gradientBytesSentPerStep();
    }

    /** Bytes this rank sends per step for {@link #afterStep()}'s broadcasts. */
    public long broadcastBytesSentPerStep() {
        return grads.broadcastBytesSent(grads.parameters());
    }

    /** Restores the parameters' previous hooks and stops the communication thread; the communicator stays open. */
    @Override
    public void close() {
        grads.close();
    }
}
