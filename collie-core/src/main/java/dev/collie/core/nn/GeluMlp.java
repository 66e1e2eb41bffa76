package dev.collie.core.nn;

import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * GPT-J's and CodeGen's feed-forward block: {@code out(gelu_new(in(x)))}, GELU in its tanh approximation
 * ({@link Kernels#geluTanh}), its two linears named as the family names them.
 */
public final class GeluMlp extends Module implements Layer {
    /** The names of the projection to the inner size and the one back. */
    public record Names(String in, String out) {
        /** CodeGen's: fc_in, fc_out. */
        public static final Names CODEGEN = new Names("fc_in", "fc_out");
    }

    private final Names names;

    public GeluMlp(Names names, long hidden, long inner, boolean bias, DataType dtype, double initStd) {
        this.names = names;
        registerModule(names.in(), new Linear(hidden, inner, bias, dtype, initStd));
        registerModule(names.out(), new Linear(inner, hidden, bias, dtype, initStd));
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        INDArray a = layer(names.in()).forward(tape, x);
        tape.save(this, tape.stash(a));
        return layer(names.out()).forward(tape, Kernels.get().geluTanh(a));
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray dh = layer(names.out()).backward(tape, dy);
        INDArray a = tape.restore(tape.pop(this));
        return layer(names.in()).backward(tape, Kernels.get().geluTanhBackward(dh, a));
    }
}
