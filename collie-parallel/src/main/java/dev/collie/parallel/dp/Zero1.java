package dev.collie.parallel.dp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * ZeRO stage 1: optimizer state sharded by parameter, as PyTorch's {@code ZeroRedundancyOptimizer} does. Gradients
 * are reduced as in plain data parallel (the same replicated {@link GradientReducer}); every trainable parameter has
 * one owner rank (greedy, largest first, to balance element counts), a replica builds its optimizer over
 * {@link #ownedParameters()} only, so it holds about 1/dp of the optimizer state, updates the parameters it owns, and
 * {@link #afterStep()} broadcasts them from their owners.
 */
public final class Zero1 extends ReducerSync {
    private final Map<Parameter, Integer> owner = new IdentityHashMap<>();
    private final Map<String, Parameter> owned = new LinkedHashMap<>();

    public Zero1(Map<String, Parameter> params, Communicator comm) {
        super(replicated(params, comm, DataParallel.DEFAULT_BUCKET_BYTES));
        List<Parameter> order = grads.plan().parameters();
        // largest first onto the least-loaded rank: the same result on every rank (names and shapes match)
        owner.putAll(Owners.balanced(order, comm.size()));
        for (Parameter p : order) {
            if (owner.get(p) == comm.rank()) {
                owned.put(grads.plan().name(p), p);
            }
        }
    }

    /** The parameters this replica updates: give only these to its optimizer. */
    public Map<String, Parameter> ownedParameters() {
        return Collections.unmodifiableMap(owned);
    }

    @Override
    public boolean shardsOptimizerState() {
        return true;
    }

    /** Every parameter's new value, from the replica that updated it. */
    @Override
    public void afterStep() {
        for (Parameter p : grads.plan().parameters()) {
            grads.broadcast(p.data(), owner.get(p));
        }
    }
}
