package dev.collie.optim;

import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.optim.FusedBackwardOptimizer;
import dev.collie.core.train.Distributed;
import dev.collie.core.train.GradientRoute;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;

/** Drives optimizers the way the Trainer does, with given gradients instead of a model's backward. */
final class Drive {
    private Drive() {
    }

    /** Delivers {@code g} as p's complete gradient (fires p's hook, as backward would). */
    static void deliver(Parameter p, INDArray g) {
        Tape t = Tape.forTraining(1, 1);
        t.use(p);
        p.accumulateGrad(t, g.dup());
    }

    /** One step of a fused optimizer: every pass delivers the same gradients, as a repeated backward would. */
    static void fusedStep(FusedBackwardOptimizer opt, double lr, List<Parameter> params, List<INDArray> grads) {
        GradientRoute.compose(Distributed.SINGLE, opt);
        opt.beginStep(lr);
        for (int pass = 0; pass < opt.passes(); pass++) {
            opt.beginPass(pass);
            for (int i = 0; i < params.size(); i++) {
                deliver(params.get(i), grads.get(i));
            }
        }
    }

    /** The array's elements as doubles (row-major). */
    static double[] values(INDArray a) {
        return a.castTo(DataType.DOUBLE).reshape(a.length()).toDoubleVector();
    }

    /** Largest absolute element-wise difference. */
    static double maxDiff(INDArray a, double[] b) {
        double[] x = values(a);
        double d = 0;
        for (int i = 0; i < x.length; i++) {
            d = Math.max(d, Math.abs(x[i] - b[i]));
        }
        return d;
    }
}
