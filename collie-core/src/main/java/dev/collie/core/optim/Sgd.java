package dev.collie.core.optim;

import dev.collie.core.nn.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/** Plain stochastic gradient descent, {@code θ ← θ − lr·g}; the smallest {@link PerParameterOptimizer}. */
public final class Sgd extends PerParameterOptimizer {
    public Sgd(Map<String, Parameter> params) {
        super(params);
    }

    @Override
    protected String[] stateNames() {
        return new String[0];
    }

    @Override
    protected void update(INDArray param, INDArray grad, INDArray[] state, double lr, long step) {
        param.subi(grad.mul(lr));
    }
}
