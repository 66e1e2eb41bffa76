package dev.collie.parallel.dp;

import dev.collie.core.nn.Parameter;
import dev.collie.core.train.Distributed;

import java.util.Collection;

/**
 * The replica side every data-parallel stage shares ({@link DataParallel}, {@link Zero2}, {@link Zero3}): where this
 * rank stands among the replicas and the gradient reduction, both its {@link GradientReducer}'s. How a step ends and
 * what else each stage holds stays with each.
 */
abstract class ReducerSync implements Distributed, AutoCloseable {
    final GradientReducer grads;

    ReducerSync(GradientReducer grads) {
        this.grads = grads;
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
