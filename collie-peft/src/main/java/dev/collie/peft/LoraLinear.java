package dev.collie.peft;

import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link Linear} with a LoRA adapter: {@code y = base(x) + scaling · B(A(dropout(x)))}, {@code A} {@code [r, in]},
 * {@code B} {@code [out, r]}. The base weight (and bias) keep their names ({@code weight}, {@code bias}) and are
 * frozen by {@link Peft#wrap}, so they get no gradient; the adapter's are {@code lora_A.weight} and
 * {@code lora_B.weight}, as in peft. Dropout acts only on training tapes; its mask is drawn from this module's
 * seed and a call counter and kept in the tape's cache, so a recomputed forward (activation checkpointing)
 * sees the same mask. {@link #merge()} folds {@code scaling · B A} into the base weight and
 * {@link #unmerge()} takes it out again; while merged the adapter path is skipped.
 */
public final class LoraLinear extends Module implements Layer {
    private final Linear base;
    private final Linear loraA;
    private final Linear loraB;
    private final double scaling;
    private final double dropout;
    private final long seed;
    private final AtomicLong masksDrawn = new AtomicLong();
    private volatile boolean merged;

    private record Saved(INDArray mask, boolean merged) {
    }

    /**
     * Wraps {@code base} with a rank-{@code r} adapter: {@code A} Kaiming-uniform with {@code a = √5} (uniform in
     * ±1/√in, drawn from ND4J's random generator), {@code B} zero.
     */
    public LoraLinear(Linear base, int r, double scaling, double dropout, long seed) {
        this.base = base;
        this.scaling = scaling;
        this.dropout = dropout;
        this.seed = seed;
        registerParameter("weight", base.weight());
        if (base.bias() != null) {
            registerParameter("bias", base.bias());
        }
        DataType dt = base.weight().dtype();
        this.loraA = registerModule("lora_A", new Linear(base.inFeatures(), r, false, dt, 0));
        this.loraB = registerModule("lora_B", new Linear(r, base.outFeatures(), false, dt, 0));
        double bound = 1.0 / Math.sqrt(base.inFeatures());
        loraA.weight().data().assign(Nd4j.rand(dt, r, base.inFeatures()).muli(2 * bound).subi(bound));
        loraB.weight().data().assign(0);
    }

    /** The wrapped linear layer. */
    public Linear base() {
        return base;
    }

    public Parameter loraA() {
        return loraA.weight();
    }

    public Parameter loraB() {
        return loraB.weight();
    }

    public double scaling() {
        return scaling;
    }

    public boolean isMerged() {
        return merged;
    }

    /** The adapter's parameters (frozen or not). */
    public List<Parameter> adapterParameters() {
        return List.of(loraA.weight(), loraB.weight());
    }

    /** {@code scaling · B A}, the change the adapter makes to the base weight. */
    public INDArray deltaWeight() {
        return Kernels.get().matmul(loraB.weight().data(), loraA.weight().data(), false, false).muli(scaling);
    }

    /** Adds the adapter into the base weight; the forward then runs the base layer alone. */
    public synchronized void merge() {
        if (!merged) {
            base.weight().data().addi(deltaWeight());
            merged = true;
        }
    }

    /** Subtracts the adapter from the base weight again (exact up to float rounding). */
    public synchronized void unmerge() {
        if (merged) {
            base.weight().data().subi(deltaWeight());
            merged = false;
        }
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        INDArray y = base.forward(tape, x);
        boolean m = merged;
        if (m) {
            tape.save(this, new Saved(null, true));
            return y;
        }
        INDArray mask = null;
        INDArray h = x;
        if (dropout > 0 && tape.isTraining()) {
            mask = tape.cached(List.of(this, "lora-dropout"), () -> dropoutMask(x));
            h = x.mul(mask);
        }
        y.addi(loraB.forward(tape, loraA.forward(tape, h)).muli(scaling));
        tape.save(this, new Saved(mask, false));
        return y;
    }

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

    /** Inverted dropout: each element kept with probability 1 − p and scaled by 1/(1 − p). */
    private INDArray dropoutMask(INDArray x) {
        SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + masksDrawn.getAndIncrement());
        int n = (int) x.length();
        double keep = 1.0 / (1.0 - dropout);
        double[] m = new double[n];
        for (int i = 0; i < n; i++) {
            m[i] = rnd.nextDouble() < dropout ? 0.0 : keep;
        }
        return Nd4j.create(m, x.shape(), 'c').castTo(x.dataType());
    }
}
