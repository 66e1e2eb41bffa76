package dev.collie.optim;

import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.GradClip;
import dev.collie.core.optim.PerParameterOptimizer;
import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Adan (Xie et al. 2022, "Adaptive Nesterov Momentum"), as CoLLiE's port of sail-sg/Adan. The betas are
 * "keep" factors (the paper's β is one minus these). With Δ = g − g_prev (0 at the first step):
 * {@code m ← β1·m + (1−β1)·g}, {@code v ← β2·v + (1−β2)·Δ}, {@code n ← β3·n + (1−β3)·(g + β2·Δ)²},
 * {@code denom = sqrt(n)/sqrt(1−β3ᵗ) + eps},
 * {@code θ ← θ − lr/(1−β1ᵗ)·m/denom − lr·β2/(1−β2ᵗ)·v/denom}, then the proximal weight decay
 * {@code θ ← θ/(1 + lr·wd)} (or, with {@code noProx}, {@code θ ← θ(1 − lr·wd)} first).
 * With {@code maxGradNorm > 0} all gradients are first scaled by {@code min(1, maxGradNorm/(‖g‖ + eps))}
 * (the norm taken over all of this optimizer's parameters).
 * Defaults lr 1e-3, betas 0.98/0.92/0.99, eps 1e-8, weight decay 0, no clipping, proximal decay.
 * State: {@code exp_avg}, {@code exp_avg_diff}, {@code exp_avg_sq}, {@code neg_pre_grad}: 16 bytes per
 * fp32 parameter.
 */
public final class Adan extends PerParameterOptimizer {
    /** CoLLiE's default learning rate. */
    public static final double DEFAULT_LR = 1e-3;

    private final double beta1;
    private final double beta2;
    private final double beta3;
    private final double eps;
    private final double weightDecay;
    private final double maxGradNorm;
    private final boolean noProx;
    private double lastGradNorm = Double.NaN;

    /** Adan with CoLLiE's defaults. */
    public Adan(Map<String, Parameter> params) {
        this(params, 0.98, 0.92, 0.99, 1e-8, 0.0, 0.0, false);
    }

    /**
     * @param maxGradNorm global clipping threshold applied before the update; 0 turns it off
     * @param noProx      decay the weights before the update ({@code θ(1 − lr·wd)}) instead of after it
     *                    ({@code θ/(1 + lr·wd)})
     */
    public Adan(Map<String, Parameter> params, double beta1, double beta2, double beta3, double eps,
                double weightDecay, double maxGradNorm, boolean noProx) {
        super(params);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.beta3 = beta3;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.maxGradNorm = maxGradNorm;
        this.noProx = noProx;
    }

    /** Global gradient norm measured by the last step's clipping (NaN without {@code maxGradNorm}). */
    public double lastGradNorm() {
        return lastGradNorm;
    }

    @Override
    public void step(double lr) {
        if (maxGradNorm > 0) {
            List<Parameter> params = new ArrayList<>(parameters().values());
            lastGradNorm = GradClip.globalNorm(params);
            double coef = maxGradNorm / (lastGradNorm + eps);
            if (coef < 1.0) {
                Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
                for (Parameter p : params) {
                    if (seen.add(p) && p.grad() != null) {
                        p.grad().muli(coef);
                    }
                }
            }
        }
        super.step(lr);
    }

    @Override
    protected String[] stateNames() {
        return new String[] {"exp_avg", "exp_avg_diff", "exp_avg_sq", "neg_pre_grad"};
    }

    @Override
    protected void update(INDArray param, INDArray grad, INDArray[] state, double lr, long step) {
        Kernels.get().adan(param, grad, state[0], state[1], state[2], state[3],
                new Kernels.AdanStep(lr, beta1, beta2, beta3, eps, weightDecay, noProx, step));
    }
}
