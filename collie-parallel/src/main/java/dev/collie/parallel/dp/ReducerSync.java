package dev.collie.parallel.dp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import dev.collie.core.train.Distributed;

import java.util.Collection;
import java.util.Map;

/**
 * The replica side every data-parallel stage shares ({@link DataParallel}, {@link Zero1}, {@link Zero2},
 * {@link Zero3}): where this rank stands among the replicas, the gradient reduction and the memory it holds, all its
 * {@link GradientReducer}'s. How a step ends and what else each stage holds stays with each.
 */
public abstract class ReducerSync implements Distributed, AutoCloseable {
    final GradientReducer grads;

    ReducerSync(GradientReducer grads) {
        this.grads = grads;
    }

    /** The reducer of a replicated {@link Ownership}: every rank keeps every averaged gradient (DP, ZeRO-1). */
    static GradientReducer replicated(Map<String, Parameter> params, Communicator comm, long bucketBytes) {
        return new GradientReducer(Ownership.replicated("data parallel", params, comm.rank(), comm.size(), bucketBytes),
                comm, bucketBytes);
    }

    @Override
    public int replicaRank() {
        return grads.plan().rank;
    }

    @Override
    public int replicas() {
        return grads.plan().n;
    }

    @Override
    public Collection<Parameter> routedParameters() {
        return grads.plan().parameters();
    }

    @Override
    public Reduction reduction() {
        return grads;
    }

    /** Waits for every bucket's reduction: then each parameter's keeper holds its averaged gradient. */
    @Override
    public void finishReduction() {
        grads.finish();
    }

    /** The mean of {@code value} over the replicas (e.g. a step's loss); every rank calls it at the same point. */
    @Override
    public double average(double value) {
        return grads.average(value);
    }

    @Override
    public boolean anyRank(boolean flag) {
        return grads.anyRank(flag);
    }

    /** Values, gradient buffers and communication buffers this rank holds now for the trainable parameters. */
    public RankMemory memory() {
        return grads.memory();
    }

    /** The number of gradient buckets. */
    public int bucketCount() {
        return grads.bucketCount();
    }

    /** Takes the parameters' routes back to plain (keep) and stops the communication thread; the communicator stays open. */
    @Override
    public void close() {
        grads.close();
    }
}
