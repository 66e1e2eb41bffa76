package dev.collie.core.nn;

import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** LLaMA's feed-forward block: {@code down(silu(gate(x)) * up(x))}. */
public final class SwiGluMlp extends Module implements Layer {
    public SwiGluMlp(long hidden, long intermediate, boolean bias, DataType dtype, double initStd) {
        registerModule("gate_proj", new Linear(hidden, intermediate, bias, dtype, initStd));
        registerModule("up_proj", new Linear(hidden, intermediate, bias, dtype, initStd));
        registerModule("down_proj", new Linear(intermediate, hidden, bias, dtype, initStd));
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        INDArray a = layer("gate_proj").forward(tape, x);
        INDArray b = layer("up_proj").forward(tape, x);
        tape.save(this, new INDArray[] {a, b});
        return layer("down_proj").forward(tape, Kernels.get().siluMul(a, b));
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray dh = layer("down_proj").backward(tape, dy);
        INDArray[] ab = tape.pop(this);
        INDArray[] g = Kernels.get().siluMulBackward(dh, ab[0], ab[1]);
        INDArray dx = layer("up_proj").backward(tape, g[1]);
        return dx.addi(layer("gate_proj").backward(tape, g[0]));
    }
}
