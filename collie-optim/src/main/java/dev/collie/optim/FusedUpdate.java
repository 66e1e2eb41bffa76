package dev.collie.optim;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.FusedBackwardOptimizer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What LOMO and AdaLomo share: the gradient hook (unscale, norm pass, value clip, norm clip, update, free
 * the gradient at once), the two-pass global-norm clipping and the step count.
 */
abstract class FusedUpdate implements FusedBackwardOptimizer {
    private final Map<String, Parameter> params;
    private final double clipGradNorm;
    private final double clipGradValue;
    private final DynamicLossScaler scaler;
    private volatile double lr;
    private volatile int pass;
    private double normSq;
    private volatile double coef = 1;
    private volatile boolean overflow;
    private volatile boolean withheld;    // a one-pass step met a non-finite gradient
    private volatile double stepScale;
    private double lastGradNorm = Double.NaN;
    private long steps;
    private long skippedSteps;
    private volatile GradNormReducer normReducer;

    FusedUpdate(Map<String, Parameter> params, double clipGradNorm, double clipGradValue, DynamicLossScaler scaler) {
        if (clipGradNorm < 0 || clipGradValue < 0) {
            throw new CollieException(getClass().getSimpleName() + ": clip thresholds must be >= 0 (0 = off), got"
                    + " clip_grad_norm " + clipGradNorm + ", clip_grad_value " + clipGradValue);
        }
        this.params = Collections.unmodifiableMap(new LinkedHashMap<>(params));
        this.clipGradNorm = clipGradNorm;
        this.clipGradValue = clipGradValue;
        this.scaler = scaler;
        this.stepScale = scaler == null ? 1.0 : scaler.scale();
    }

    @Override
    public final Map<String, Parameter> parameters() {
        return params;
    }

    /** Steps begun so far. */
    public final long steps() {
        return steps;
    }

    /** Steps skipped because the gradients overflowed (a non-finite global norm: two-pass steps only). */
    public final long skippedSteps() {
        return skippedSteps;
    }

    /** Global norm of the last step's (unscaled, unclipped) gradients; NaN when no norm pass ran. */
    public final double lastGradNorm() {
        return lastGradNorm;
    }

    /** Threshold of the global-norm clipping (0 = off). */
    public final double clipGradNorm() {
        return clipGradNorm;
    }

    /**
     * The factor the caller must multiply the loss by for this step's backward passes (the loss scaler's
     * scale, fixed from {@link #beginStep} to the end of the step); 1 without a loss scaler.
     */
    public final double lossScale() {
        return stepScale;
    }

    /** The loss scaler, or null. */
    public final DynamicLossScaler lossScaler() {
        return scaler;
    }

    /**
     * Under tensor or pipeline parallelism: the first pass adds only the parameters the reducer counts here, and
     * the norm is the reducer's sum over the model's ranks (see {@link FusedBackwardOptimizer#setGradNormReducer}).
     */
    @Override
    public final void setGradNormReducer(GradNormReducer reducer) {
        this.normReducer = reducer;
    }

    @Override
    public final int passes() {
        return clipGradNorm > 0 || scaler != null ? 2 : 1;
    }

    @Override
    public final void beginStep(double lr) {
        this.lr = lr;
        steps++;
        pass = 0;
        normSq = 0;
        coef = 1;
        overflow = false;
        withheld = false;
        stepScale = scaler == null ? 1.0 : scaler.scale();
    }

    @Override
    public final void beginPass(int pass) {
        this.pass = pass;
        if (pass == 1 && passes() == 2) {
            GradNormReducer r = normReducer;
            lastGradNorm = Math.sqrt(r == null ? normSq : r.reduce(normSq));
            overflow = !Double.isFinite(lastGradNorm);
            if (clipGradNorm > 0 && !overflow) {
                coef = Math.min(1.0, clipGradNorm / (lastGradNorm + 1e-6));
            }
            if (scaler != null) {
                scaler.update(overflow);
            }
            if (overflow) {
                skippedSteps++;
            }
        }
    }

    @Override
    public final boolean withheldLastStep() {
        return overflow || withheld;
    }

    @Override
    public final void onGradientReady(Parameter p, INDArray g) {
        try {
            if (stepScale != 1.0) {
                g.divi(stepScale);
            }
            if (pass == 0 && passes() == 2) {
                GradNormReducer r = normReducer;
                if (r == null || r.counts(p)) {
                    addNormSq(InPlace.squaredNorm(g));
                }
                return;
            }
            if (overflow) {
                return;
            }
            if (passes() == 1 && !Double.isFinite(InPlace.squaredNorm(g))) {
                withheld = true;        // this parameter keeps its value; the others of the step are updated
                return;
            }
            if (clipGradValue > 0) {
                InPlace.clampInPlace(g, clipGradValue);
            }
            if (coef < 1.0) {
                InPlace.scal(coef, g);
            }
            apply(p, g, lr, steps);
        } finally {
            p.releaseGrad();
        }
    }

    private synchronized void addNormSq(double sq) {
        normSq += sq;
    }

    /**
     * Updates {@code p} from its (unscaled, clipped) gradient {@code g}, which may be overwritten;
     * {@code step} counts steps from 1.
     */
    abstract void apply(Parameter p, INDArray g, double lr, long step);

    /** Saves the step count and the loss scaler (subclasses add their tensors). */
    Map<String, INDArray> baseState() {
        Map<String, INDArray> out = new LinkedHashMap<>();
        out.put("step", Nd4j.scalar(steps));
        if (scaler != null) {
            out.put("loss_scale", Nd4j.scalar(scaler.scale()));
            out.put("loss_scale_clean_steps", Nd4j.scalar((long) scaler.cleanSteps()));
        }
        return out;
    }

    void loadBaseState(Map<String, INDArray> saved) {
        INDArray step = saved.get("step");
        if (step == null) {
            throw new CollieException("optimizer state has no 'step' entry");
        }
        steps = step.getLong(0);
        if (scaler != null && saved.containsKey("loss_scale")) {
            INDArray clean = saved.get("loss_scale_clean_steps");
            scaler.restore(saved.get("loss_scale").getDouble(0), clean == null ? 0 : (int) clean.getLong(0));
            stepScale = scaler.scale();
        }
    }
}
