package dev.collie.optim;

import dev.collie.core.nn.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * LOMO (Lv et al. 2023, "Full Parameter Fine-tuning for Large Language Models with Limited Resources"):
 * SGD fused into backward. Each parameter is updated in its gradient hook the moment its gradient is
 * complete, {@code θ ← θ(1 − lr·wd) − lr·g}, and the gradient is freed at once, so a step never holds more
 * than the gradients in flight. Options: {@code clipGradValue} clamps each element; {@code clipGradNorm}
 * makes a step two backward passes (the first only measures the global norm, the second updates with the
 * gradients scaled by {@code min(1, clipGradNorm/(norm + 1e-6))}); a {@link DynamicLossScaler} for fp16
 * (also two passes: an overflow seen in the first skips the step; the caller multiplies the loss by
 * {@link #lossScale()}). Defaults lr 1e-3, no clipping, weight decay 0. State: none.
 */
public final class Lomo extends FusedUpdate {
    /** CoLLiE's default learning rate. */
    public static final double DEFAULT_LR = 1e-3;

    private final double weightDecay;

    /** LOMO without clipping, weight decay or loss scaling. */
    public Lomo(Map<String, Parameter> params) {
        this(params, 0, 0, 0, null);
    }

    /**
     * @param clipGradNorm  global-norm threshold (0 = off)
     * @param clipGradValue element-wise threshold (0 = off)
     * @param lossScaler    dynamic loss scaler for fp16 gradients, or null
     */
    public Lomo(Map<String, Parameter> params, double clipGradNorm, double clipGradValue, double weightDecay,
                DynamicLossScaler lossScaler) {
        super(params, clipGradNorm, clipGradValue, lossScaler);
        this.weightDecay = weightDecay;
    }

    @Override
    void apply(Parameter p, INDArray g, double lr, long step) {
        INDArray theta = p.data();
        if (weightDecay != 0) {
            InPlace.scal(1 - lr * weightDecay, theta);
        }
        InPlace.axpy(-lr, g, theta);
    }

    @Override
    public Map<String, INDArray> stateDict() {
        return baseState();
    }

    @Override
    public void loadStateDict(Map<String, INDArray> state) {
        loadBaseState(state);
    }

    @Override
    public long stateBytes() {
        return 0;
    }
}
