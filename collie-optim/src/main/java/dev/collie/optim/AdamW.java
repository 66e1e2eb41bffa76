package dev.collie.optim;

import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.PerParameterOptimizer;
import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.Map;

/**
 * AdamW with PyTorch's semantics ({@code torch.optim.AdamW}): decoupled weight decay
 * {@code θ ← θ(1 − lr·wd)}, then Adam with bias correction,
 * {@code θ ← θ − lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)}.
 * Defaults lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01. State: 8 bytes per fp32 parameter.
 */
public final class AdamW extends PerParameterOptimizer {
    /** The default learning rate. */
    public static final double DEFAULT_LR = 1e-3;

    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;

    public AdamW(Map<String, Parameter> params) {
        this(params, 0.9, 0.999, 1e-8, 0.01);
    }

    public AdamW(Map<String, Parameter> params, double beta1, double beta2, double eps, double weightDecay) {
        super(params);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
    }

    @Override
    protected String[] stateNames() {
        return new String[] {"exp_avg", "exp_avg_sq"};
    }

    @Override
    protected void update(INDArray param, INDArray grad, INDArray[] state, double lr, long step) {
        Kernels.get().adamW(param, grad, state[0], state[1], new Kernels.AdamWStep(lr, beta1, beta2, eps, weightDecay, step));
    }

    /** The same rule written out element-wise (kept as the test oracle for the fused path). */
    static void referenceUpdate(INDArray param, INDArray grad, INDArray m, INDArray v, double lr, long step,
                                double beta1, double beta2, double eps, double weightDecay) {
        param.muli(1 - lr * weightDecay);
        m.muli(beta1).addi(grad.mul(1 - beta1));
        v.muli(beta2).addi(grad.mul(grad).muli(1 - beta2));
        double bc1 = 1 - Math.pow(beta1, step);
        double bc2 = 1 - Math.pow(beta2, step);
        INDArray denom = Transforms.sqrt(v, true).divi(Math.sqrt(bc2)).addi(eps);
        param.subi(m.div(denom).muli(lr / bc1));
    }
}
