package dev.collie.optim;

import dev.collie.core.CollieException;

/**
 * Dynamic loss scaling for fp16 training: the loss is multiplied by {@link #scale()} before backward and
 * the gradients divided by it; a step whose gradients overflow (inf/NaN) is skipped and the scale halved,
 * and after {@code window} clean steps in a row the scale is doubled again. CoLLiE's LOMO only ever
 * halves (it never reports clean steps) and starts at 2^32; this one starts at 2^16 by default (the
 * largest power of two whose product with a unit fp16 gradient is still finite: fp16's maximum is 65504)
 * and grows back after {@code window} clean steps, as DeepSpeed's scaler does.
 */
public final class DynamicLossScaler {
    private final double factor;
    private final int window;
    private final double minScale;
    private double scale;
    private int cleanSteps;

    /** Initial scale 2^16, factor 2, window 1000, minimum 1. */
    public DynamicLossScaler() {
        this(65536.0, 2.0, 1000, 1.0);
    }

    public DynamicLossScaler(double initScale, double factor, int window, double minScale) {
        if (!(initScale > 0) || !(factor > 1) || window < 1 || !(minScale > 0) || initScale < minScale) {
            throw new CollieException("loss scaler: need initScale >= minScale > 0, factor > 1, window >= 1; got "
                    + initScale + ", " + factor + ", " + window + ", " + minScale);
        }
        this.scale = initScale;
        this.factor = factor;
        this.window = window;
        this.minScale = minScale;
    }

    /** The current loss scale S. */
    public double scale() {
        return scale;
    }

    /** Clean steps since the last overflow or growth. */
    public int cleanSteps() {
        return cleanSteps;
    }

    /**
     * Reports the outcome of a step: an overflow halves the scale (not below the minimum) and restarts the
     * window; a clean step counts towards the window, and a full window doubles the scale.
     *
     * @throws CollieException on an overflow at the minimum scale (the gradients overflow even unscaled)
     */
    public void update(boolean overflow) {
        if (overflow) {
            if (scale <= minScale) {
                throw new CollieException("loss scaler: gradients overflow at the minimum loss scale " + minScale
                        + "; the run diverged (lower the learning rate or train in fp32/bf16)");
            }
            scale = Math.max(scale / factor, minScale);
            cleanSteps = 0;
        } else if (++cleanSteps >= window) {
            scale *= factor;
            cleanSteps = 0;
        }
    }

    /** Restores a saved scale and clean-step count. */
    public void restore(double scale, int cleanSteps) {
        this.scale = scale;
        this.cleanSteps = cleanSteps;
    }
}
