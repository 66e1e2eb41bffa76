package dev.collie.core.nn;

import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** {@code y = x / sqrt(mean(x²) + eps) * weight} over the last dimension (LLaMA's norm), weight initialised to one. */
public class RMSNorm extends Module implements Layer {
    private final Parameter weight;
    private final double eps;

    public RMSNorm(long dim, double eps, DataType dtype) {
        this.weight = registerParameter("weight", new Parameter(Init.ones(dtype, dim)));
        this.eps = eps;
    }

    /** A second face of {@code same}: its weight (shared) and epsilon, for a subclass that changes one step. */
    protected RMSNorm(RMSNorm same) {
        super(same);
        this.weight = same.weight;
        this.eps = same.eps;
    }

    /**
     * The weight's gradient from this call, before it is accumulated: as computed here. A norm whose rows are
     * spread over ranks (a tensor-parallel rank's share of the heads) sums it over them.
     */
    protected INDArray weightGradient(INDArray g) {
        return g;
    }

    public Parameter weight() {
        return weight;
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        tape.use(weight);
        INDArray[] r = Kernels.get().rmsNorm(x, weight.data(), eps);
        tape.save(this, new INDArray[] {tape.stash(r[1]), tape.keep(r[2])});
        return r[0];
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray[] s = tape.pop(this);
        INDArray[] g = Kernels.get().rmsNormBackward(dy, tape.restore(s[0]), s[1], weight.data(), weight.requiresGrad());
        if (g[1] != null) {
            weight.accumulateGrad(tape, weightGradient(g[1]));
        }
        return g[0];
    }
}
