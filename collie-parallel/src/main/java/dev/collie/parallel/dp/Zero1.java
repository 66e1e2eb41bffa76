package dev.collie.parallel.dp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import dev.collie.core.train.Distributed;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * ZeRO stage 1 over {@link DataParallel}: optimizer state sharded by parameter, as PyTorch's
 * {@code ZeroRedundancyOptimizer} does. Every trainable parameter has one owner rank (greedy, largest
 * first, to balance element counts); a replica builds its optimizer over {@link #ownedParameters()} only,
 * so it holds about 1/dp of the optimizer state; gradients are averaged as in plain data parallel, each
 * replica updates the parameters it owns, and {@link #afterStep()} broadcasts them from their owners.
 */
public final class Zero1 implements Distributed, AutoCloseable {
    private final DataParallel dp;
    private final Map<Parameter, Integer> owner = new IdentityHashMap<>();
    private final List<Parameter> order = new ArrayList<>();
    private final Map<String, Parameter> owned = new LinkedHashMap<>();

    public Zero1(Map<String, Parameter> params, Communicator comm) {
        this.dp = new DataParallel(params, comm);
        Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        List<Map.Entry<String, Parameter>> trainable = new ArrayList<>();
        params.forEach((n, p) -> {
            if (p.requiresGrad() && seen.add(p)) {
                trainable.add(Map.entry(n, p));
                order.add(p);
            }
        });
        // largest first onto the least-loaded rank: the same result on every rank (names and shapes match)
        owner.putAll(Owners.balanced(order, comm.size()));
        for (Map.Entry<String, Parameter> e : trainable) {
            if (owner.get(e.getValue()) == comm.rank()) {
                owned.put(e.getKey(), e.getValue());
            }
        }
    }

    /** The parameters this replica updates: give only these to its optimizer. */
    public Map<String, Parameter> ownedParameters() {
        return Collections.unmodifiableMap(owned);
    }

    @Override
    public int replicaRank() {
        return dp.replicaRank();
    }

    @Override
    public int replicas() {
        return dp.replicas();
    }

    @Override
    public Collection<Parameter> routedParameters() {
        return dp.routedParameters();
    }

    @Override
    public Reduction reduction() {
        return dp.reduction();
    }

    @Override
    public void finishReduction() {
        dp.finishReduction();
    }

    @Override
    public double average(double value) {
        return dp.average(value);
    }

    @Override
    public boolean shardsOptimizerState() {
        return true;
    }

    /** Every parameter's new value, from the replica that updated it. */
    @Override
    public void afterStep() {
        for (Parameter p : order) {
            dp.broadcast(p.data(), owner.get(p));
        }
    }

    /** Values, gradient buffers and bucket buffers this rank holds (as plain data parallel; only the optimizer state is sharded). */
    public RankMemory memory() {
        return dp.memory();
    }

    @Override
    public void close() {
        dp.close();
    }
}
