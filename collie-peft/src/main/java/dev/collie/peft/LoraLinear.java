package dev.collie.peft;

import dev.collie.core.CollieException;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.nn.TensorParallelContext;
import dev.collie.core.nn.TensorParallelizable;
import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;

import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/**
 * A {@link Linear} with a LoRA adapter: {@code y = base(x) + scaling · B(A(dropout(x)))}, {@code A} {@code [r, in]},
 * {@code B} {@code [out, r]}. The base weight (and bias) keep their names ({@code weight}, {@code bias}) and are
 * frozen by {@link Peft#wrap}, so they get no gradient; the adapter's are {@code lora_A.weight} and
 * {@code lora_B.weight}, as in peft. Dropout acts only on training tapes; its mask is drawn from this module's
 * seed and a call counter and kept in the tape's cache, so a recomputed forward (activation checkpointing)
 * sees the same mask. {@link #merge()} folds {@code scaling · B A} into the base weight and
 * {@link #unmerge()} takes it out again; while merged the adapter path is skipped.
 *
 * <p><b>Tensor parallelism.</b> When a model's plan names the wrapped linear, the tensor-parallel applier asks this
 * layer for its shard ({@link #shardForTensorParallel}); the shard is again a {@code LoraLinear}, with the same
 * parameter names, whose base is the standard column- or row-parallel split of the linear and whose two products
 * follow a sub-plan of standard tensor-parallel layers, so forward and backward here have no parallel branch:
 * <ul>
 *   <li><b>column-parallel base</b> (q/k/v, gate/up): {@code A} {@code [r, in]} replicated before a column-parallel
 *       {@code B} ({@code [out/n, r]}). The adapter's input gradient is partial, like the base's, and the region
 *       around the parent sums both at once. {@code A}'s gradient is partial too: its layer sums either the small
 *       {@code [rows, r]} gradient of {@code A·x} or {@code A}'s gradient {@code [r, in]}, whichever is smaller,
 *       before it is delivered, so every rank's {@code A} gets the whole (bit-identical) gradient
 *       ({@code TensorParallelContext.replicateBeforeColumn}).</li>
 *   <li><b>row-parallel base</b> (o, down): a row-parallel {@code A} ({@code [r, in/n]}), whose partial products
 *       {@code A·x} {@code [rows, r]} are summed in forward, before a replicated {@code B}: after the sum everything
 *       is whole, {@code B}'s gradient is the same on every rank and backward communicates nothing.</li>
 * </ul>
 * The bytes a split adapter adds per micro-batch and layer are thus one all-reduce of {@code rows·r} elements
 * (row-parallel base, forward) or of {@code r·min(rows, in)} elements (column-parallel base, backward).
 * A dropout mask is drawn over the whole input and a row-parallel shard keeps its columns, so a split model
 * drops what the unsplit one drops.
 */
public final class LoraLinear extends Module implements Layer, TensorParallelizable {
    /** The base layer: the {@link Linear}, or its column-/row-parallel shard. */
    private final Layer base;
    private final Parameter baseWeight;
    /** The adapter's two products: {@link Linear}s, or under tensor parallelism the layers of the split's sub-plan. */
    private final Layer loraA;
    private final Layer loraB;
    private final Parameter aWeight;
    private final Parameter bWeight;
    private final int r;
    private final double scaling;
    private final double dropout;
    private final long seed;
    private final AtomicLong masksDrawn;
    /** How the base is split: {@link ParallelStyle#REPLICATE} when it is not. */
    private final ParallelStyle style;
    /** The tensor-parallel group of a split layer, else null. */
    private final TensorParallelContext tp;
    /** The unsplit base layer's features. */
    private final long inFeatures;
    private final long outFeatures;
    private volatile boolean merged;

    /** What backward needs beyond what its layers keep: the dropout mask (or none), or that it was merged. */
    private record Saved(INDArray mask, boolean merged) {
    }

    private static final Saved MERGED = new Saved(null, true);

    /**
     * Wraps {@code base} with a rank-{@code r} adapter: {@code A} Kaiming-uniform with {@code a = √5} (uniform in
     * ±1/√in, drawn from ND4J's random generator), {@code B} zero.
     */
    public LoraLinear(Linear base, int r, double scaling, double dropout, long seed) {
        this.base = base;
        this.baseWeight = base.weight();
        this.r = r;
        this.scaling = scaling;
        this.dropout = dropout;
        this.seed = seed;
        this.masksDrawn = new AtomicLong();
        this.style = ParallelStyle.REPLICATE;
        this.tp = null;
        this.inFeatures = base.inFeatures();
        this.outFeatures = base.outFeatures();
        registerParameter("weight", base.weight());
        if (base.bias() != null) {
            registerParameter("bias", base.bias());
        }
        DataType dt = base.weight().dtype();
        Linear a = registerModule("lora_A", new Linear(base.inFeatures(), r, false, dt, 0));
        Linear b = registerModule("lora_B", new Linear(r, base.outFeatures(), false, dt, 0));
        this.loraA = a;
        this.loraB = b;
        this.aWeight = a.weight();
        this.bWeight = b.weight();
        double bound = 1.0 / Math.sqrt(base.inFeatures());
        aWeight.data().assign(Nd4j.rand(dt, r, base.inFeatures()).muli(2 * bound).subi(bound));
        bWeight.data().assign(0);
    }

    /**
     * Rank {@code ctx.rank()}'s shard of {@code full} (see the class comment): the base split as {@code style}, and
     * the adapter's sub-plan, column base: {@code A} replicated before a column-parallel {@code B}; row base: a
     * row-parallel {@code A} (its product summed in forward) before a replicated {@code B}.
     */
    private LoraLinear(LoraLinear full, ParallelStyle style, TensorParallelContext ctx) {
        Module shard = ctx.shardLinear((Linear) full.base, style);
        this.base = (Layer) shard;
        this.baseWeight = shard.namedParameters().get("weight");
        this.r = full.r;
        this.scaling = full.scaling;
        this.dropout = full.dropout;
        this.seed = full.seed;
        this.masksDrawn = new AtomicLong(full.masksDrawn.get());
        this.style = style;
        this.tp = ctx;
        this.inFeatures = full.inFeatures;
        this.outFeatures = full.outFeatures;
        this.merged = full.merged;
        shard.namedParameters().forEach(this::registerParameter);
        boolean column = style == ParallelStyle.COLUMN;
        Module a = column ? ctx.replicateBeforeColumn((Linear) full.loraA) : ctx.shardLinear((Linear) full.loraA, style);
        Module b = column ? ctx.shardLinear((Linear) full.loraB, style) : (Linear) full.loraB;
        this.loraA = (Layer) registerModule("lora_A", a);
        this.loraB = (Layer) registerModule("lora_B", b);
        this.aWeight = a.namedParameters().get("weight");
        this.bWeight = b.namedParameters().get("weight");
    }

    /**
     * This layer's shard for a tensor-parallel rank: the base split as {@code style} (COLUMN or ROW) the standard
     * way, {@code lora_B} split with a column-parallel base, {@code lora_A} with a row-parallel one.
     */
    @Override
    public Module shardForTensorParallel(ParallelStyle style, TensorParallelContext ctx) {
        if (tp != null) {
            throw new CollieException("this LoRA layer is already split over " + tp.size() + " tensor-parallel ranks");
        }
        if (style != ParallelStyle.COLUMN && style != ParallelStyle.ROW) {
            throw new CollieException("a LoRA layer wraps a linear layer, which tensor parallelism splits COLUMN or"
                    + " ROW, not " + style);
        }
        return new LoraLinear(this, style, ctx);
    }

    /** The wrapped linear layer. */
    public Linear base() {
        if (tp != null) {
            throw new IllegalStateException("this LoRA layer's base is split over " + tp.size()
                    + " tensor-parallel ranks: baseModule() is this rank's shard");
        }
        return (Linear) base;
    }

    /** The wrapped layer as it is here: the {@link Linear}, or this rank's column-/row-parallel shard of it. */
    public Module baseModule() {
        return (Module) base;
    }

    /** The base layer's weight here (this rank's shard when split). */
    public Parameter baseWeight() {
        return baseWeight;
    }

    public Parameter loraA() {
        return aWeight;
    }

    public Parameter loraB() {
        return bWeight;
    }

    /** The adapter's rank {@code r}. */
    public int r() {
        return r;
    }

    public double scaling() {
        return scaling;
    }

    public boolean isMerged() {
        return merged;
    }

    /** Whether this layer is a tensor-parallel rank's shard. */
    public boolean isSplit() {
        return tp != null;
    }

    /** How the base layer is split: COLUMN or ROW for a tensor-parallel shard, REPLICATE when it is whole. */
    public ParallelStyle splitStyle() {
        return style;
    }

    /** {@code lora_A}'s unsplit shape {@code [r, in]}. */
    public long[] fullShapeA() {
        return new long[] {r, inFeatures};
    }

    /** {@code lora_B}'s unsplit shape {@code [out, r]}. */
    public long[] fullShapeB() {
        return new long[] {outFeatures, r};
    }

    /**
     * Sets the adapter from unsplit tensors {@code A} {@code [r, in]} and {@code B} {@code [out, r]} (any float
     * type); a tensor-parallel shard keeps its part of them.
     */
    public void loadFull(INDArray a, INDArray b) {
        check("lora_A", a, fullShapeA());
        check("lora_B", b, fullShapeB());
        boolean column = style == ParallelStyle.COLUMN;
        INDArray ca = a.castTo(loraA().dtype());
        INDArray cb = b.castTo(loraB().dtype());
        loraA().data().assign(tp == null || column ? ca : tp.shardLike(ca, loraA()));
        loraB().data().assign(tp == null || !column ? cb : tp.shardLike(cb, loraB()));
    }

    private static void check(String what, INDArray t, long[] shape) {
        if (!Arrays.equals(t.shape(), shape)) {
            throw new CollieException(what + " has shape " + Arrays.toString(t.shape()) + " but the adapter needs "
                    + Arrays.toString(shape));
        }
    }

    /** The adapter's parameters (frozen or not). */
    public List<Parameter> adapterParameters() {
        return List.of(aWeight, bWeight);
    }

    /** {@code scaling · B A}, the change the adapter makes to the base weight (to this rank's shard of it when split). */
    public INDArray deltaWeight() {
        return Kernels.get().matmul(bWeight.data(), aWeight.data(), false, false).muli(scaling);
    }

    /** Adds the adapter into the base weight; the forward then runs the base layer alone. */
    public synchronized void merge() {
        if (!merged) {
            baseWeight.data().addi(deltaWeight());
            merged = true;
        }
    }

    /** Subtracts the adapter from the base weight again (exact up to float rounding). */
    public synchronized void unmerge() {
        if (merged) {
            baseWeight.data().subi(deltaWeight());
            merged = false;
        }
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        INDArray y = base.forward(tape, x);
        if (merged) {
            tape.save(this, MERGED);
            return y;
        }
        INDArray mask = null;
        INDArray h = x;
        if (dropout > 0 && tape.isTraining()) {
            mask = tape.cached(List.of(this, "lora-dropout"), () -> dropoutMask(x));
            h = x.mul(mask);
        }
        y.addi(loraB.forward(tape, loraA.forward(tape, h)).muli(scaling));
        tape.save(this, new Saved(tape.keep(mask), false));
        return y;
    }

    /** The mirror of forward; each product's input gradient comes before its weight gradient (fused optimizers). */
    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        Saved s = tape.pop(this);
        if (s.merged) {
            return base.backward(tape, dy);
        }
        INDArray dh = loraA.backward(tape, loraB.backward(tape, dy.mul(scaling)));
        if (s.mask != null) {
            dh.muli(s.mask);
        }
        return base.backward(tape, dy).addi(dh);
    }

    /**
     * Inverted dropout: each element kept with probability 1 − p and scaled by 1/(1 − p). The mask is drawn for the
     * whole input; a row-parallel shard (whose input is its block of columns) keeps its columns of it.
     */
    private INDArray dropoutMask(INDArray x) {
        SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + masksDrawn.getAndIncrement());
        long rows = x.size(0);
        long cols = style == ParallelStyle.ROW ? inFeatures : x.size(1);
        int n = Math.toIntExact(rows * cols);
        double keep = 1.0 / (1.0 - dropout);
        double[] m = new double[n];
        for (int i = 0; i < n; i++) {
            m[i] = rnd.nextDouble() < dropout ? 0.0 : keep;
        }
        INDArray full = Nd4j.create(m, new long[] {rows, cols}, 'c').castTo(x.dataType());
        if (style != ParallelStyle.ROW) {
            return full.reshape(x.shape());
        }
        long w = x.size(1);
        long from = (long) tp.rank() * w;
        return full.get(all(), interval(from, from + w)).dup('c');
    }
}
