package dev.collie.parallel.dp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.GradClip;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.train.LanguageModel;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What {@link Zero2} and {@link Zero3} have in common: both shard gradients and optimizer state by parameter through
 * a {@link GradientReducer} over a sharded {@link Ownership}; this is the part of their replica side and reporting
 * that only reads it. How a step ends, and what else each stage holds, stays with each.
 */
abstract class ShardedSync extends ReducerSync {
    ShardedSync(GradientReducer grads) {
        super(grads);
    }

    /** The reducer of a sharded {@link Ownership} (see {@link Ownership#sharded}). */
    static GradientReducer reducer(String label, Map<String, Parameter> params, Communicator comm, long bucketBytes,
                                   SplitPolicy policy, boolean blocksOwnStorage) {
        return new GradientReducer(Ownership.sharded(label, params, comm.rank(), comm.size(), bucketBytes, policy,
                blocksOwnStorage), comm, bucketBytes);
    }

    /**
     * The parameters this rank updates, by name: give only these to its optimizer. A split parameter appears
     * as this rank's row block under the parameter's name (ZeRO-2: a view of those rows of its value; ZeRO-3: an
     * array of its own, the master copy of those rows).
     */
    public Map<String, Parameter> ownedParameters() {
        return grads.plan().ownedParameters();
    }

    /**
     * The rank that owns (updates, and keeps the gradient of) trainable parameter {@code p}, or -1 when it is
     * split into row blocks, one owned by each rank ({@link #splitParameters()}).
     */
    public int owner(Parameter p) {
        return grads.plan().owner(p);
    }

    @Override
    public boolean splitsParameters() {
        return !splitParameters().isEmpty();
    }

    /** The names of the parameters split into one row block per rank, in registration order (often none). */
    public List<String> splitParameters() {
        return grads.plan().splitNames();
    }

    /** The optimizer's parameters: this replica holds their gradients (a split parameter's as its row block). */
    @Override
    public List<Parameter> gradientHolders(LanguageModel model, Optimizer optimizer) {
        return new ArrayList<>(optimizer.parameters().values());
    }

    /** Each replica holds its owned parameters' gradients: the squares add up over the replicas. */
    @Override
    public double gradNorm(List<Parameter> held) {
        double mine = GradClip.globalNorm(held);
        return Math.sqrt(average(mine * mine) * replicas());
    }

    @Override
    public boolean shardsOptimizerState() {
        return true;
    }

    /**
     * True: after {@link #finishReduction()} a rank holds only its owned parameters' gradients, so a global gradient
     * norm needs all ranks ({@link #globalGradientNorm()}).
     */
    @Override
    public boolean shardsGradients() {
        return true;
    }

    /**
     * The L2 norm of the whole averaged gradient, row blocks included (a collective: call it on every rank after
     * {@link #finishReduction()}).
     */
    public double globalGradientNorm() {
        return grads.globalGradientNorm();
    }

    /**
     * Values, gradient buffers and communication buffers this rank holds for the trainable parameters now
     * (between steps: its owned values and gradients, its row blocks', and the bucket pool).
     */
    @Override
    public RankMemory memory() {
        return grads.memory();
    }

    /** {@link #memory()} in one figure. */
    public long residentBytes() {
        return memory().total();
    }

    /** Buckets reduced with a reduce-scatter; the others use an all-reduce. */
    public int scatteredBucketCount() {
        return grads.scatteredBucketCount();
    }

    /** Bytes this rank sends per step for the gradients (step-style optimizers). */
    public long gradientBytesSentPerStep() {
        return grads.gradientBytesSentPerStep();
    }
}
