package dev.collie.core.optim;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Parameter;
import dev.collie.core.tensor.Backends;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration;
import org.nd4j.linalg.api.memory.enums.AllocationPolicy;
import org.nd4j.linalg.api.memory.enums.LearningPolicy;
import org.nd4j.linalg.api.memory.enums.ResetPolicy;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;

/**
 * The optimizer SPI: a step-style optimizer written as one small class, a list of per-parameter state
 * tensors and an element-wise update rule. State is allocated (zero, parameter-shaped) at the first
 * update and is saved in checkpoints as {@code <parameter>.<state name>}; temporaries of the update
 * live in a reused workspace, so a step allocates nothing new after the first. Where ND4J ops run
 * single-threaded (worker threads, see {@code StepRunner}), parameters are updated side by side on
 * several threads: {@link #update} must touch only its own parameter's arrays (state kept outside the
 * given {@code state} tensors needs a thread-safe map).
 */
public abstract class PerParameterOptimizer implements Optimizer {
    private static final WorkspaceConfiguration SCRATCH = WorkspaceConfiguration.builder()
            .initialSize(0).policyAllocation(AllocationPolicy.STRICT).policyLearning(LearningPolicy.FIRST_LOOP)
            .policyReset(ResetPolicy.BLOCK_LEFT).build();

    private static final ForkJoinPool POOL =
            new ForkJoinPool(Runtime.getRuntime().availableProcessors());

    private final Map<String, Parameter> params;
    private final Map<Parameter, INDArray[]> state = new LinkedHashMap<>();
    private long steps;

    protected PerParameterOptimizer(Map<String, Parameter> params) {
        this.params = Collections.unmodifiableMap(new LinkedHashMap<>(params));
    }

    /** Names of the state tensors kept per parameter (e.g. {@code exp_avg}, {@code exp_avg_sq}); may be empty. */
    protected abstract String[] stateNames();

    /**
     * Updates {@code param} in place. {@code state} holds this parameter's tensors in {@link #stateNames}
     * order and may be updated in place; {@code step} counts this optimizer's steps from 1.
     */
    protected abstract void update(INDArray param, INDArray grad, INDArray[] state, double lr, long step);

    @Override
    public final Map<String, Parameter> parameters() {
        return params;
    }

    /** Steps taken so far. */
    public final long steps() {
        return steps;
    }

    @Override
    public void step(double lr) {
        steps++;
        List<Parameter> ready = new ArrayList<>();
        for (Parameter p : distinct()) {
            if (p.grad() != null) {
                state.computeIfAbsent(p, this::allocate);
                ready.add(p);
            }
        }
        // parameters are independent: where ops run single-threaded, update several side by side
        int streams = Math.min(Backends.parallelStreams(), ready.size());
        if (streams <= 1) {
            ready.forEach(p -> update(p, lr));
        } else {
            try {
                POOL.submit(() -> ready.parallelStream().forEach(p -> update(p, lr))).get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            } catch (ExecutionException e) {
                throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
            }
        }
    }

    private void update(Parameter p, double lr) {
        try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace(SCRATCH, "collie-optimizer")) {
            update(p.data(), p.grad(), state.get(p), lr, steps);
        }
        p.zeroGrad();
    }

    private Iterable<Parameter> distinct() {
        Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        List<Parameter> out = new ArrayList<>();
        for (Parameter p : params.values()) {
            if (seen.add(p)) {
                out.add(p);
            }
        }
        return out;
    }

    private INDArray[] allocate(Parameter p) {
        String[] names = stateNames();
        INDArray[] s = new INDArray[names.length];
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            for (int i = 0; i < s.length; i++) {
                s[i] = Nd4j.zeros(p.dtype(), p.shape());
            }
        }
        return s;
    }

    @Override
    public Map<String, INDArray> stateDict() {
        Map<String, INDArray> out = new LinkedHashMap<>();
        out.put("step", Nd4j.scalar(steps));
        String[] names = stateNames();
        params.forEach((name, p) -> {
            INDArray[] s = state.get(p);
            if (s != null) {
                for (int i = 0; i < names.length; i++) {
                    out.putIfAbsent(name + "." + names[i], s[i]);
                }
            }
        });
        return out;
    }

    @Override
    public void loadStateDict(Map<String, INDArray> saved) {
        INDArray step = saved.get("step");
        if (step == null) {
            throw new CollieException("optimizer state has no 'step' entry");
        }
        steps = step.getLong(0);
        String[] names = stateNames();
        params.forEach((name, p) -> {
            if (names.length == 0 || state.containsKey(p) || !saved.containsKey(name + "." + names[0])) {
                return;
            }
            INDArray[] s = allocate(p);
            for (int i = 0; i < names.length; i++) {
                INDArray v = saved.get(name + "." + names[i]);
                if (v == null) {
                    throw new CollieException("optimizer state lacks " + name + "." + names[i]);
                }
                s[i].assign(v.reshape(p.shape()));
            }
            state.put(p, s);
        });
    }

    @Override
    public long stateBytes() {
        return Optimizer.bytesOf(state.values());
    }
}
