package dev.collie.peft;

import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Tape;
import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * PyTorch's {@code nn.Sequential(Linear, act, Linear, ...)} as peft builds its prompt encoders: the linear
 * layers sit at indices 0, 2, 4, ... (their parameters are named {@code 0.weight}, {@code 2.bias}, ...), with the
 * same activation between each pair. Linear layers are initialised as PyTorch's default: weight and bias uniform
 * in ±1/√in.
 */
final class Mlp extends Module implements Layer {
    enum Activation { TANH, RELU }

    private final List<Linear> linears = new ArrayList<>();
    private final Activation act;

    /** Linear layers of widths {@code sizes[0] → sizes[1] → ... }, with {@code act} between them. */
    Mlp(Activation act, DataType dtype, int... sizes) {
        this.act = act;
        for (int i = 0; i + 1 < sizes.length; i++) {
            Linear l = registerModule(Integer.toString(2 * i), new Linear(sizes[i], sizes[i + 1], true, dtype, 0));
            double bound = 1.0 / Math.sqrt(sizes[i]);
            l.weight().data().assign(Nd4j.rand(dtype, sizes[i + 1], sizes[i]).muli(2 * bound).subi(bound));
            l.bias().data().assign(Nd4j.rand(dtype, sizes[i + 1]).muli(2 * bound).subi(bound));
            linears.add(l);
        }
    }

    List<Linear> linears() {
        return linears;
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        INDArray h = x;
        for (int i = 0; i < linears.size(); i++) {
            h = linears.get(i).forward(tape, h);
            if (i + 1 < linears.size()) {
                h = act == Activation.TANH ? Transforms.tanh(h, true) : Transforms.relu(h, true);
                tape.save(this, tape.stash(h));
            }
        }
        return h;
    }

    /** The forward without a tape, with the weights {@code params} gives by this module's names ({@code 0.weight}, ...). */
    INDArray forwardWith(Map<String, INDArray> params, INDArray x) {
        INDArray h = x;
        for (int i = 0; i < linears.size(); i++) {
            h = Kernels.get().matmul(h, params.get(2 * i + ".weight"), false, true)
                    .addiRowVector(params.get(2 * i + ".bias"));
            if (i + 1 < linears.size()) {
                h = act == Activation.TANH ? Transforms.tanh(h, true) : Transforms.relu(h, true);
            }
        }
        return h;
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray d = dy;
        for (int i = linears.size() - 1; i >= 0; i--) {
            if (i + 1 < linears.size()) {
                INDArray out = tape.restore(tape.pop(this));
                // tanh' = 1 - tanh², relu' = [out > 0]
                INDArray local = act == Activation.TANH ? out.mul(out).rsubi(1.0)
                        : out.gt(0.0).castTo(out.dataType());
                d = d.mul(local);
            }
            d = linears.get(i).backward(tape, d);
        }
        return d;
    }
}
