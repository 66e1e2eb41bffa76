package dev.collie.core.nn;

import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** LLaMA's feed-forward block: {@code down(silu(gate(x)) * up(x))}, its three linears named as the family names them. */
public final class SwiGluMlp extends Module implements Layer {
    /** The names of the gate, up and down projections. */
    public record Names(String gate, String up, String down) {
        /** LLaMA's: gate_proj, up_proj, down_proj. */
        public static final Names LLAMA = new Names("gate_proj", "up_proj", "down_proj");
    }

    private final Names names;

    public SwiGluMlp(long hidden, long intermediate, boolean bias, DataType dtype, double initStd) {
        this(Names.LLAMA, hidden, intermediate, bias, dtype, initStd);
    }

    public SwiGluMlp(Names names, long hidden, long intermediate, boolean bias, DataType dtype, double initStd) {
        this.names = names;
        registerModule(names.gate(), new Linear(hidden, intermediate, bias, dtype, initStd));
        registerModule(names.up(), new Linear(hidden, intermediate, bias, dtype, initStd));
        registerModule(names.down(), new Linear(intermediate, hidden, bias, dtype, initStd));
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        INDArray a = layer(names.gate()).forward(tape, x);
        INDArray b = layer(names.up()).forward(tape, x);
        tape.save(this, new INDArray[] {a, b});
        return layer(names.down()).forward(tape, Kernels.get().siluMul(a, b));
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray dh = layer(names.down()).backward(tape, dy);
        INDArray[] ab = tape.pop(this);
        INDArray[] g = Kernels.get().siluMulBackward(dh, ab[0], ab[1]);
        INDArray dx = layer(names.up()).backward(tape, g[1]);
        return dx.addi(layer(names.gate()).backward(tape, g[0]));
    }
}
