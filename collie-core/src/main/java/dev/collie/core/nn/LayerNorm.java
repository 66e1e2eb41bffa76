package dev.collie.core.nn;

import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@code y = (x − mean(x)) / sqrt(var(x) + eps) * weight + bias} over the last dimension (GPT's and CodeGen's norm,
 * PyTorch's {@code nn.LayerNorm}); weight initialised to one, bias to zero.
 */
public final class LayerNorm extends Module implements Layer {
    private final Parameter weight;
    private final Parameter bias;
    private final double eps;

    public LayerNorm(long dim, double eps, DataType dtype) {
        this.weight = registerParameter("weight", new Parameter(Init.ones(dtype, dim)));
        this.bias = registerParameter("bias", new Parameter(Init.zeros(dtype, dim)));
        this.eps = eps;
    }

    public Parameter weight() {
        return weight;
    }

    public Parameter bias() {
        return bias;
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        tape.use(weight);
        tape.use(bias);
        INDArray[] r = Kernels.get().layerNorm(x, weight.data(), bias.data(), eps);
        tape.save(this, new INDArray[] {tape.stash(r[1]), tape.keep(r[2])});
        return r[0];
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray[] s = tape.pop(this);
        INDArray[] g = Kernels.get().layerNormBackward(dy, tape.restore(s[0]), s[1], weight.data(),
                weight.requiresGrad() || bias.requiresGrad());
        if (weight.requiresGrad()) {
            weight.accumulateGrad(tape, g[1]);
        }
        if (bias.requiresGrad()) {
            bias.accumulateGrad(tape, g[2]);
        }
        return g[0];
    }
}
