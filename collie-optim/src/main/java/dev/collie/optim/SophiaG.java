package dev.collie.optim;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.HessianEstimator;
import dev.collie.core.optim.PerParameterOptimizer;
import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration;
import org.nd4j.linalg.api.memory.enums.AllocationPolicy;
import org.nd4j.linalg.api.memory.enums.LearningPolicy;
import org.nd4j.linalg.api.memory.enums.ResetPolicy;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * SophiaG (Liu et al. 2023, "Sophia: a Scalable Stochastic Second-order Optimizer"), as CoLLiE's port:
 * {@code θ ← θ(1 − lr·wd)}, {@code m ← β1·m + (1−β1)·g},
 * {@code θ ← θ − lr·sign(m)·min(|m|/(ρ·bs·h + 1e-15), 1)}, with the diagonal Hessian estimate
 * {@code h ← β2·h + (1−β2)·ĝ⊙ĝ} refreshed by {@link #updateHessian()} from a gradient ĝ of the loss
 * against labels sampled from the model's own softmax (Gauss-Newton-Bartlett). Unlike CoLLiE, whose
 * Trainer never refreshes h (so Sophia degenerates to sign-momentum there), the collie Trainer does so every
 * {@link #hessianInterval()} steps. Defaults lr 1e-4, betas 0.965/0.99, rho 0.04, weight decay 0.1,
 * bs 5120 (tokens per step in the Sophia recipe), interval 10.
 * State: {@code exp_avg} and {@code hessian}, 8 bytes per fp32 parameter.
 */
public final class SophiaG extends PerParameterOptimizer implements HessianEstimator {
    /** CoLLiE's default learning rate. */
    public static final double DEFAULT_LR = 1e-4;
    private static final WorkspaceConfiguration SCRATCH = WorkspaceConfiguration.builder()
            .initialSize(0).policyAllocation(AllocationPolicy.STRICT).policyLearning(LearningPolicy.FIRST_LOOP)
            .policyReset(ResetPolicy.BLOCK_LEFT).build();

    private final double beta1;
    private final double beta2;
    private final double rho;
    private final double weightDecay;
    private final double bs;
    private final int hessianInterval;
    /** h by parameter, and by the parameter's value array (what {@link #update} is given). */
    private final Map<Parameter, INDArray> hessian = new LinkedHashMap<>();
    private final Map<INDArray, Parameter> byData = new IdentityHashMap<>();
    private long hessianUpdates;

    /** SophiaG with CoLLiE's defaults and a Hessian refresh every 10 steps. */
    public SophiaG(Map<String, Parameter> params) {
        this(params, 0.965, 0.99, 0.04, 0.1, 5120, 10);
    }

    /**
     * @param bs              the "batch size" in the clipping denominator ρ·bs·h (Sophia's recipe uses the
     *                        tokens per step)
     * @param hessianInterval steps between Hessian refreshes (the Trainer reads it)
     */
    public SophiaG(Map<String, Parameter> params, double beta1, double beta2, double rho, double weightDecay,
                   double bs, int hessianInterval) {
        super(params);
        if (hessianInterval < 1) {
            throw new CollieException("SophiaG: hessian interval must be >= 1, got " + hessianInterval);
        }
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.rho = rho;
        this.weightDecay = weightDecay;
        this.bs = bs;
        this.hessianInterval = hessianInterval;
        for (Parameter p : params.values()) {
            byData.put(p.data(), p);
        }
    }

    @Override
    public int hessianInterval() {
        return hessianInterval;
    }

    /** Hessian refreshes so far. */
    public long hessianUpdates() {
        return hessianUpdates;
    }

    @Override
    public void updateHessian() {
        hessianUpdates++;
        for (Parameter p : byData.values()) {
            INDArray g = p.grad();
            if (g == null) {
                continue;
            }
            INDArray h = hessianOf(p);
            try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace(SCRATCH, "collie-sophia")) {
                h.muli(beta2);
                InPlace.axpy(1 - beta2, g.mul(g), h);
            }
        }
    }

    /** Synchronized: the base class may update several parameters side by side. */
    private synchronized INDArray hessianOf(Parameter p) {
        return hessian.computeIfAbsent(p, q -> InPlace.zerosOutside(q.dtype(), q.shape()));
    }

    @Override
    protected String[] stateNames() {
        return new String[] {"exp_avg"};
    }

    @Override
    protected void update(INDArray param, INDArray grad, INDArray[] state, double lr, long step) {
        Kernels.get().sophiaG(param, grad, state[0], hessianOf(byData.get(param)), lr, beta1, rho * bs, weightDecay);
    }

    @Override
    public Map<String, INDArray> stateDict() {
        Map<String, INDArray> out = super.stateDict();
        out.put("hessian_updates", Nd4j.scalar(hessianUpdates));
        parameters().forEach((name, p) -> {
            INDArray h = hessian.get(p);
            if (h != null) {
                out.putIfAbsent(name + ".hessian", h);
            }
        });
        return out;
    }

    @Override
    public void loadStateDict(Map<String, INDArray> saved) {
        super.loadStateDict(saved);
        INDArray n = saved.get("hessian_updates");
        hessianUpdates = n == null ? 0 : n.getLong(0);
        parameters().forEach((name, p) -> {
            INDArray h = saved.get(name + ".hessian");
            if (h != null) {
                hessianOf(p).assign(h.reshape(p.shape()));
            }
        });
    }

    @Override
    public long stateBytes() {
        long n = super.stateBytes();
        for (INDArray h : hessian.values()) {
            n += h.length() * h.dataType().width();
        }
        return n;
    }
}
