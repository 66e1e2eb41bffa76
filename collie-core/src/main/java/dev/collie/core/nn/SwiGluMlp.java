package dev.collie.core.nn;

import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/**
 * LLaMA's feed-forward block: {@code down(silu(gate(x)) * up(x))}, its linears named as the family names them; the
 * gate and up projections may be one fused linear whose output is {@code [gate | up]} (ChatGLM's dense_h_to_4h).
 */
public final class SwiGluMlp extends Module implements Layer {
    /** The names of the gate, up and down projections; {@code up} null when {@code gate} names the fused pair. */
    public record Names(String gate, String up, String down) {
        /** LLaMA's: gate_proj, up_proj, down_proj. */
        public static final Names LLAMA = new Names("gate_proj", "up_proj", "down_proj");

        /** One linear {@code gateUp} computing {@code [gate | up]}, and the down projection. */
        public static Names fused(String gateUp, String down) {
            return new Names(gateUp, null, down);
        }

        /** Whether gate and up are one linear. */
        public boolean isFused() {
            return up == null;
        }
    }

    private final Names names;

    public SwiGluMlp(long hidden, long intermediate, boolean bias, DataType dtype, double initStd) {
        this(Names.LLAMA, hidden, intermediate, bias, dtype, initStd);
    }

    public SwiGluMlp(Names names, long hidden, long intermediate, boolean bias, DataType dtype, double initStd) {
        this.names = names;
        if (names.isFused()) {
            registerModule(names.gate(), new Linear(hidden, 2 * intermediate, bias, dtype, initStd));
        } else {
            registerModule(names.gate(), new Linear(hidden, intermediate, bias, dtype, initStd));
            registerModule(names.up(), new Linear(hidden, intermediate, bias, dtype, initStd));
        }
        registerModule(names.down(), new Linear(intermediate, hidden, bias, dtype, initStd));
    }

    /** The output sections a column split must cut one by one: the fused gate and up halves (else none). */
    public long[] sectionsOf(String child, long outFeatures) {
        return names.isFused() && child.equals(names.gate()) ? new long[] {outFeatures / 2, outFeatures / 2} : null;
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        INDArray a;
        INDArray b;
        if (names.isFused()) {
            INDArray y = layer(names.gate()).forward(tape, x);
            long half = y.size(1) / 2;         // a tensor-parallel rank's [gate | up] share: its halves
            a = y.get(all(), interval(0, half)).dup('c');
            b = y.get(all(), interval(half, 2 * half)).dup('c');
        } else {
            a = layer(names.gate()).forward(tape, x);
            b = layer(names.up()).forward(tape, x);
        }
        tape.save(this, new INDArray[] {tape.stash(a), tape.stash(b)});
        return layer(names.down()).forward(tape, Kernels.get().siluMul(a, b));
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray dh = layer(names.down()).backward(tape, dy);
        INDArray[] ab = tape.pop(this);
        INDArray[] g = Kernels.get().siluMulBackward(dh, tape.restore(ab[0]), tape.restore(ab[1]));
        if (names.isFused()) {
            return layer(names.gate()).backward(tape, Nd4j.concat(1, g[0], g[1]));
        }
        INDArray dx = layer(names.up()).backward(tape, g[1]);
        return dx.addi(layer(names.gate()).backward(tape, g[0]));
    }
}
