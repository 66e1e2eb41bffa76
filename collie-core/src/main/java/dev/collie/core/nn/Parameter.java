package dev.collie.core.nn;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.Sharding;
import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.UnaryOperator;

/**
 * A trainable (or frozen) tensor of a {@link Module}. Its gradient arrives through one door,
 * {@link #accumulateGrad}, and when it is complete for the step the parameter's {@link GradientHook} fires.
 * Gradient and value live outside any ND4J workspace, so they survive the per-micro-batch scope.
 */
public final class Parameter {
    /** The value; null while offloaded (see {@link #offload()}). */
    private INDArray data;
    private final long[] shape;
    private final long numel;
    private final DataType dtype;
    private INDArray grad;
    private boolean hasGrad;
    /** True while a contribution is being written straight into {@link #grad} (see {@link #accumulateGradInto}). */
    private boolean writing;
    private boolean trainable = true;
    private GradientHook hook = GradientHook.KEEP;
    /** How the tensor is split over tensor-parallel ranks (see {@link #setSharding}). */
    private volatile Sharding sharding = Sharding.WHOLE;

    public Parameter(INDArray data) {
        DataType t = data.dataType();
        if (t != DataType.FLOAT && t != DataType.DOUBLE) {
            throw new CollieException("a parameter of type " + t + ": collie trains in FLOAT (or DOUBLE, for checks);"
                    + " bf16 and fp16 checkpoints are upcast when loaded, and mixed-precision training (bf16/fp16"
                    + " weights with fp32 master copies) does not exist yet");
        }
        this.data = data.isAttached() ? data.detach() : data;
        this.shape = this.data.shape();
        this.numel = this.data.length();
        this.dtype = this.data.dataType();
    }

    /**
     * The current value. Optimizers update it in place.
     *
     * @throws IllegalStateException while the value is offloaded ({@link #offload()})
     */
    public INDArray data() {
        INDArray d = data;
        if (d == null) {
            throw new IllegalStateException("parameter " + Arrays.toString(shape) + " " + dtype
                    + " is offloaded: its value lives on another rank (ZeRO-3 keeps each parameter on its owner"
                    + " between uses; a pipeline stage keeps only its own layers); gather it before reading it");
        }
        return d;
    }

    /** Replaces the value (same shape), e.g. when loading a checkpoint. */
    public void setData(INDArray value) {
        INDArray d = data();
        if (!Arrays.equals(value.shape(), shape)) {
            throw new IllegalArgumentException("shape " + Arrays.toString(value.shape())
                    + " does not match parameter shape " + Arrays.toString(shape));
        }
        d.assign(value);
    }

    public long[] shape() {
        return shape.clone();
    }

    public long numel() {
        return numel;
    }

    public DataType dtype() {
        return dtype;
    }

    /**
     * Records how this parameter is split: one rank's equal block of a larger tensor (tensor parallelism: a
     * column-parallel weight along dimension 0, a row-parallel one along 1), so that statistics of the whole tensor
     * (an update's RMS, AdaLomo's row and column means) can be summed over the group, and a checkpoint gathers it
     * along the right dimension. Set by whatever creates the shard; {@link Sharding#WHOLE} until then.
     *
     * @throws IllegalArgumentException when the split dimension is not a dimension of this parameter
     */
    public Parameter setSharding(Sharding s) {
        int d = Sharding.dimOf(s.style());
        if (d >= shape.length) {
            throw new IllegalArgumentException("split dimension " + d + " (" + s.style() + ") of parameter "
                    + Arrays.toString(shape));
        }
        this.sharding = s;
        return this;
    }

    /** How this parameter is split over tensor-parallel ranks ({@link Sharding#WHOLE} when it is not). */
    public Sharding sharding() {
        return sharding;
    }

    /** The dimension this shard's tensor is split along over {@link #shardGroup()}, or -1 when this parameter is whole. */
    public int shardDim() {
        return sharding.dim();
    }

    /** The ranks holding the other blocks of this parameter's tensor, or null when whole. */
    public Communicator shardGroup() {
        return sharding.isSplit() ? sharding.group() : null;
    }

    /** The shape of the whole tensor this parameter is a block of: {@link #shape()} when it is whole. */
    public long[] fullShape() {
        long[] s = shape.clone();
        int d = shardDim();
        if (d >= 0) {
            s[d] *= sharding.group().size();
        }
        return s;
    }

    /** Whether the value is held here ({@link #data()} answers); false while offloaded. */
    public boolean isResident() {
        return data != null;
    }

    /**
     * Drops the value (ZeRO-3, on a rank that does not own this parameter): its array is closed at once.
     * Shape, element count and type still answer; {@link #data()} throws until {@link #restore}.
     * Does nothing when already offloaded.
     */
    public void offload() {
        INDArray d = data;
        data = null;
        if (d != null && d.closeable()) {
            d.close();
        }
    }

    /**
     * Makes {@code value} (same shape and type, allocated outside any workspace) this parameter's value
     * after {@link #offload()}; the parameter adopts the array, no copy.
     *
     * @throws IllegalStateException when the parameter still holds a value
     */
    public void restore(INDArray value) {
        if (data != null) {
            throw new IllegalStateException("parameter " + Arrays.toString(shape) + " is resident; offload it"
                    + " before restoring a value");
        }
        if (!Arrays.equals(value.shape(), shape) || value.dataType() != dtype) {
            throw new IllegalArgumentException("value " + Arrays.toString(value.shape()) + " "
                    + value.dataType() + " does not match parameter " + Arrays.toString(shape) + " " + dtype);
        }
        if (value.isAttached()) {
            throw new IllegalArgumentException("a restored value must live outside workspaces");
        }
        data = value;
    }

    /** Bytes of the value held here (0 while offloaded). */
    public long dataBytes() {
        return data == null ? 0 : numel * dtype.width();
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
        return hasGrad ? grad : null;
    }

    /**
     * Marks the gradient consumed. Its buffer is kept and overwritten by the next step's first
     * contribution: re-allocating it every step would touch fresh pages (12 µs per 4 KiB here).
     */
    public void zeroGrad() {
        hasGrad = false;
    }

    /** Bytes held by this parameter's gradient buffer (kept between steps; 0 once released). */
    public long gradientBufferBytes() {
        return grad == null ? 0 : grad.length() * grad.dataType().width();
    }

    /**
     * Makes this step's gradient a copy of {@code g} ({@link #numel()} elements of the parameter's type, any
     * shape), in the parameter's own buffer: for a data-parallel sync that hands each owner rank its
     * reduced gradient. Replaces whatever gradient the step had.
     */
    public synchronized void setGrad(INDArray g) {
        if (g.length() != numel) {
            throw new IllegalArgumentException("gradient of " + g.length() + " elements for parameter "
                    + Arrays.toString(shape) + " of " + numel);
        }
        if (grad == null) {
            allocateGrad();
        }
        grad.assign(g.reshape(shape));
        hasGrad = true;
    }

    /** Drops the gradient and frees its buffer at once (fused-backward optimizers keep no gradients). */
    public synchronized void releaseGrad() {
        hasGrad = false;
        if (grad != null) {
            grad.close();
            grad = null;
        }
    }

    /**
     * Sets the hook that fires when the gradient of a step is complete. Called by
     * {@code dev.collie.core.train.GradientRoute}, which composes every parameter's hook in one place.
     */
    public void setHook(GradientHook hook) {
        this.hook = hook == null ? GradientHook.KEEP : hook;
    }

    /**
     * The one door for gradients: adds {@code g} (same shape) to this parameter's gradient for the
     * micro-batch recorded by {@code tape}. When every use of this parameter in the tape's forward has
     * delivered its contribution and the tape is the step's last micro-batch, the hook fires.
     * The caller must not use {@code g} afterwards.
     */
    public void accumulateGrad(Tape tape, INDArray g) {
        tape.awaitTurn(this);
        addGrad(tape, g);
    }

    private synchronized void addGrad(Tape tape, INDArray g) {
        requireTrainable();
        awaitWriter();
        boolean complete = tape.release(this);
        if (complete && !hasGrad && hook != GradientHook.KEEP) {
            // the whole gradient in one piece, for a hook that may consume it (LOMO): it gets the caller's
            // array, no copy, so no parameter-sized buffer is ever allocated for it; kept, it is copied
            if (hook.onGradientReady(this, g)) {
                store(g);
            }
            return;
        }
        store(g);
        if (complete) {
            fire(hook);
        }
    }

    /**
     * Hands the gradient this parameter holds to {@code h} now, as if it had just completed (the pipeline's
     * weights shared by several stages: their hook waits until the stages' contributions are summed).
     * Nothing happens when the parameter holds no gradient.
     */
    public synchronized void handOver(GradientHook h) {
        if (hasGrad) {
            fire(h);
        }
    }

    /** Gives the complete gradient to {@code h}; a hook that consumed it leaves the parameter without one. */
    private void fire(GradientHook h) {
        if (!h.onGradientReady(this, grad)) {
            hasGrad = false;
        }
    }

    /**
     * The same door as {@link #accumulateGrad}, for a contribution that can be computed into a given array
     * (a matrix product): when it is the step's first contribution and the parameter keeps its gradient
     * in its own buffer, {@code contribution} is called with that buffer and writes the gradient straight into
     * it, which saves a copy of the parameter's size; otherwise it is called with null, returns a new array,
     * and that goes through {@link #accumulateGrad}. Contributions of other threads wait while one is
     * written in place; the computation itself runs outside this parameter's lock.
     */
    public void accumulateGradInto(Tape tape, UnaryOperator<INDArray> contribution) {
        tape.awaitTurn(this);
        INDArray target = claimBuffer();
        if (target == null) {
            addGrad(tape, contribution.apply(null));
            return;
        }
        boolean written = false;
        try {
            contribution.apply(target);
            written = true;
        } finally {
            delivered(tape, written);
        }
    }

    /**
     * The door for a sparse contribution, a lookup table's: adds {@code rows} ({@code [n, cols]}) to the rows
     * {@code ids} ({@code n} integers; none: a zero gradient, whatever {@code rows} is) of this 2-D parameter's
     * gradient, which is zero elsewhere. The rows of a repeated id are summed first and added once, as a dense
     * contribution would be; the sums go into the gradient buffer under this parameter's lock, so no array of the
     * table's size is made per contribution (unless a hook that consumes the gradient runs without a buffer: it is
     * lent a dense one).
     */
    public void accumulateRows(Tape tape, INDArray ids, INDArray rows) {
        requireTrainable();
        if (shape.length != 2 || ids.length() > 0 && (rows.rank() != 2 || rows.size(0) != ids.length()
                || rows.size(1) != shape[1])) {
            throw new IllegalArgumentException("rows " + Arrays.toString(rows.shape()) + " at " + ids.length()
                    + " ids for a gradient of shape " + Arrays.toString(shape));
        }
        long[] all = ids.reshape(ids.length()).toLongVector();
        Map<Long, Integer> slot = new LinkedHashMap<>();
        long[] at = new long[all.length];
        for (int i = 0; i < all.length; i++) {
            at[i] = slot.computeIfAbsent(all[i], k -> slot.size());
        }
        long[] unique = slot.keySet().stream().mapToLong(Long::longValue).toArray();
        INDArray sums = null;
        if (unique.length > 0) {
            sums = Nd4j.zeros(dtype, unique.length, shape[1]);
            Kernels.get().scatterAddRows(sums, Nd4j.createFromArray(at), rows);
        }
        tape.awaitTurn(this);
        addRows(tape, unique.length > 0 ? Nd4j.createFromArray(unique) : null, sums);
    }

    /** Adds {@code sums} at the distinct rows {@code ids} (both null for none), holding the lock. */
    private synchronized void addRows(Tape tape, INDArray ids, INDArray sums) {
        awaitWriter();
        if (grad == null && hook != GradientHook.KEEP) {
            INDArray dense = Nd4j.zeros(dtype, shape);
            if (ids != null) {
                Kernels.get().scatterAddRows(dense, ids, sums);
            }
            addGrad(tape, dense);
            return;
        }
        if (grad == null) {
            allocateGrad();
        }
        if (!hasGrad) {
            grad.assign(0);
        }
        if (ids != null) {
            Kernels.get().scatterAddRows(grad, ids, sums);
        }
        hasGrad = true;
        if (tape.release(this)) {
            fire(hook);
        }
    }

    /** The gradient buffer, to be written in place by the caller, or null when this contribution must be added. */
    private synchronized INDArray claimBuffer() {
        requireTrainable();
        // a hook that consumes the gradient (LOMO) may run without any buffer: it is then lent the caller's array
        if (hasGrad || writing || (grad == null && hook != GradientHook.KEEP)) {
            return null;
        }
        if (grad == null) {
            allocateGrad();
        }
        writing = true;
        return grad;
    }

    private synchronized void delivered(Tape tape, boolean written) {
        writing = false;
        notifyAll();
        if (!written) {
            return; // the computation failed: the buffer holds no contribution, the step fails with the caller
        }
        hasGrad = true;
        if (tape.release(this)) {
            fire(hook);
        }
    }

    private void allocateGrad() {
        // our own buffer, outside any workspace: contributions may live in (or spill from) a workspace
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            grad = Nd4j.createUninitialized(dtype, shape);
        }
    }

    private void requireTrainable() {
        if (!trainable) {
            throw new IllegalStateException("gradient delivered to a frozen parameter");
        }
    }

    /** Waits while another thread writes its contribution into the buffer in place (holding this lock). */
    private void awaitWriter() {
        while (writing) {
            try {
                wait();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while adding a gradient", e);
            }
        }
    }

    private void store(INDArray g) {
        if (hasGrad) {
            grad.addi(g);
        } else {
            if (grad == null) {
                allocateGrad();
            }
            grad.assign(g);
        }
        hasGrad = true;
    }

    @Override
    public String toString() {
        return "Parameter" + Arrays.toString(shape) + (trainable ? "" : " (frozen)")
                + (data == null ? " (offloaded)" : "");
    }
}
