package dev.collie.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A trainable (or frozen) tensor of a {@link Module}. Its gradient arrives through one door,
 * {@link #accumulateGrad}, and when it is complete for the step the parameter's {@link GradientHook} fires.
 * Gradient and value live outside any ND4J workspace, so they survive the per-micro-batch scope.
 */
public final class Parameter {
    private INDArray data;
    private INDArray grad;
    private boolean hasGrad;
    /** The caller's array, lent to a hook for the duration of the call (see {@link #accumulateGrad}). */
    private INDArray lent;
    private boolean trainable = true;
    private GradientHook hook = GradientHook.KEEP;

    public Parameter(INDArray data) {
        this.data = data.isAttached() ? data.detach() : data;
    }

    /** The current value. Optimizers update it in place. */
    public INDArray data() {
        return data;
    }

    /** Replaces the value (same shape), e.g. when loading a checkpoint. */
    public void setData(INDArray value) {
        if (!java.util.Arrays.equals(value.shape(), data.shape())) {
            throw new IllegalArgumentException("shape " + java.util.Arrays.toString(value.shape())
                    + " does not match parameter shape " + java.util.Arrays.toString(data.shape()));
        }
        data.assign(value);
    }

    public long[] shape() {
        return data.shape();
    }

    public long numel() {
        return data.length();
    }

    public DataType dtype() {
        return data.dataType();
    }

    /** Whether backward computes a gradient for this parameter. Frozen parameters only pass input gradients through. */
    public boolean requiresGrad() {
        return trainable;
    }

    public Parameter setTrainable(boolean trainable) {
        this.trainable = trainable;
        return this;
    }

    /** The accumulated gradient of this step, or null when none has arrived (or it was consumed). */
    public INDArray grad() {
        return lent != null ? lent : hasGrad ? grad : null;
    }

    /**
     * Marks the gradient consumed. Its buffer is kept and overwritten by the next step's first
     * contribution: re-allocating it every step would touch fresh pages (12 µs per 4 KiB here).
     */
    public void zeroGrad() {
        hasGrad = false;
        lent = null;
    }

    /** Bytes held by this parameter's gradient buffer (kept between steps; 0 once released). */
    public long gradientBufferBytes() {
        return grad == null ? 0 : grad.length() * grad.dataType().width();
    }

    /** Drops the gradient and frees its buffer at once (fused-backward optimizers keep no gradients). */
    public void releaseGrad() {
        hasGrad = false;
        lent = null;
        if (grad != null) {
            grad.close();
            grad = null;
        }
    }

    /** Sets the hook that fires when the gradient of a step is complete. */
    public void setHook(GradientHook hook) {
        this.hook = hook == null ? GradientHook.KEEP : hook;
    }

    public GradientHook hook() {
        return hook;
    }

    /**
     * The one door for gradients: adds {@code g} (same shape) to this parameter's gradient for the
     * micro-batch recorded by {@code tape}. When every use of this parameter in the tape's forward has
     * delivered its contribution and the tape is the step's last micro-batch, the hook fires.
     * The caller must not use {@code g} afterwards.
     */
    public synchronized void accumulateGrad(Tape tape, INDArray g) {
        if (!trainable) {
            throw new IllegalStateException("gradient delivered to a frozen parameter");
        }
        boolean complete = tape.release(this);
        if (complete && !hasGrad && hook != GradientHook.KEEP) {
            // the whole gradient in one piece, for a hook that consumes it (LOMO): lend the caller's
            // array instead of copying it, so no parameter-sized buffer is ever allocated for it
            lent = g;
            try {
                hook.onGradientReady(this);
            } finally {
                if (lent != null) {      // the hook kept the gradient: it must outlive the caller's array
                    lent = null;
                    store(g);
                }
            }
            return;
        }
        store(g);
        if (complete) {
            hook.onGradientReady(this);
        }
    }

    private void store(INDArray g) {
        if (hasGrad) {
            grad.addi(g);
        } else {
            if (grad == null) {
                // our own buffer, outside any workspace: g may live in (or spill from) a workspace
                try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                    grad = Nd4j.createUninitialized(data.dataType(), data.shape());
                }
            }
            grad.assign(g);
        }
        hasGrad = true;
    }

    @Override
    public String toString() {
        return "Parameter" + java.util.Arrays.toString(data.shape()) + (trainable ? "" : " (frozen)");
    }
}
