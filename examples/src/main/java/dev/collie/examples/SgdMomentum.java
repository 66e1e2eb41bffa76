package dev.collie.examples;

import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.PerParameterOptimizer;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * A user-written optimizer through the SPI: SGD with heavy-ball momentum as PyTorch's {@code SGD(momentum=μ)},
 * {@code b ← μ·b + g} (b = g at the first step), {@code θ ← θ − lr·b}. One state tensor,
 * {@code momentum_buffer}; the base class allocates it, keeps it in a checkpoint and runs the update in a
 * scratch workspace. {@code collie train --optimizer dev.collie.examples.SgdMomentum} uses the
 * {@code (Map<String, Parameter>)} constructor (μ = 0.9).
 */
public final class SgdMomentum extends PerParameterOptimizer {
    private final double momentum;

    /** Momentum 0.9: the constructor {@code collie train --optimizer <class name>} calls. */
    public SgdMomentum(Map<String, Parameter> params) {
        this(params, 0.9);
    }

    public SgdMomentum(Map<String, Parameter> params, double momentum) {
        super(params);
        this.momentum = momentum;
    }

    @Override
    protected String[] stateNames() {
        return new String[] {"momentum_buffer"};
    }

    @Override
    protected void update(INDArray param, INDArray grad, INDArray[] state, double lr, long step) {
        INDArray buf = state[0];
        if (step == 1) {
            buf.assign(grad);
        } else {
            buf.muli(momentum).addi(grad);
        }
        param.subi(grad.assign(buf).muli(lr));   // the spent gradient buffer holds lr·b
    }
}
