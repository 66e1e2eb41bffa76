package dev.collie.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Activation checkpointing as a wrapper (DESIGN.md §2 rule 5): forward keeps only the block's input;
 * backward re-runs the block's forward on a fresh scope and then its backward. Parameter uses are
 * counted once (by the first forward), so gradient-ready hooks still fire exactly once. A {@link LayerWrapper}:
 * it takes the block's place in the model tree with the block's names ({@code ActivationCheckpointing} puts it
 * there from outside the model).
 */
public final class Checkpointed extends LayerWrapper {
    public Checkpointed(Layer inner) {
        super(inner);
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        tape.save(this, tape.keep(x));
        return inner().forward(tape.child(false, true), x);
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray x = tape.pop(this);
        Tape recompute = tape.child(true, false);
        inner().forward(recompute, x);
        return inner().backward(recompute, dy);
    }
}
