package dev.collie.optim;

import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.PerParameterOptimizer;
import org.nd4j.linalg.api.ndarray.INDArray;
import dev.collie.core.tensor.Kernels;

import java.util.Map;

/**
 * Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), as CoLLiE's {@code Lion}:
 * {@code θ ← θ(1 − lr·wd)}, {@code c = β1·m + (1−β1)·g}, {@code θ ← θ − lr·sign(c)},
 * {@code m ← β2·m + (1−β2)·g}. Every element moves by exactly lr (or 0 where c is 0), so Lion wants a
 * learning rate 3–10× smaller than AdamW's. Defaults lr 1e-4, betas 0.9/0.99, weight decay 0.
 * State: one tensor ({@code exp_avg}), 4 bytes per fp32 parameter.
 */
public final class Lion extends PerParameterOptimizer {
    /** CoLLiE's default learning rate. */
    public static final double DEFAULT_LR = 1e-4;

    private final double beta1;
    private final double beta2;
    private final double weightDecay;

    /** Lion with CoLLiE's defaults (betas 0.9/0.99, no weight decay). */
    public Lion(Map<String, Parameter> params) {
        this(params, 0.9, 0.99, 0.0);
    }

    public Lion(Map<String, Parameter> params, double beta1, double beta2, double weightDecay) {
        super(params);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.weightDecay = weightDecay;
    }

    @Override
    protected String[] stateNames() {
        return new String[] {"exp_avg"};
    }

    @Override
    protected void update(INDArray param, INDArray grad, INDArray[] state, double lr, long step) {
        Kernels.get().lion(param, grad, state[0], lr, beta1, beta2, weightDecay);
    }
}
