package dev.collie.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Map;
import java.util.Random;
import java.util.function.BiFunction;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Float64 central finite-difference checks of a layer's backward: the scalar {@code L = Σ y·w} for a
 * fixed random {@code w}; the analytical gradients of the input and of every parameter are compared
 * with {@code (L(θ+h) − L(θ−h)) / 2h} on sampled entries.
 */
public final class GradCheck {
    private static final double H = 1e-6;
    private static final double TOL = 1e-6;

    private GradCheck() {
    }

    /** Builds a fresh tape for one forward of the layer under test (training or inference). */
    public interface TapeFactory {
        Tape make(boolean training);
    }

    /** Checks {@code layer} (whose parameters are {@code params}) at input {@code x}. */
    public static void check(Layer layer, Map<String, Parameter> params, INDArray x, TapeFactory tapes, long seed) {
        check(t -> layer.forward(t, x), (t, dy) -> layer.backward(t, dy), params, x, tapes, seed);
    }

    /** Generic form: {@code fwd} reads {@code x} (which the check perturbs in place), {@code bwd} returns dx or null. */
    public static void check(Function<Tape, INDArray> fwd, BiFunction<Tape, INDArray, INDArray> bwd,
                             Map<String, Parameter> params, INDArray x, TapeFactory tapes, long seed) {
        for (Parameter p : params.values()) {
            p.zeroGrad();
        }
        Tape tape = tapes.make(true);
        INDArray y = fwd.apply(tape);
        Nd4j.getRandom().setSeed(seed);
        INDArray w = Nd4j.randn(DataType.DOUBLE, y.shape());
        INDArray dx = bwd.apply(tape, w.dup());
        Function<Void, Double> loss = v -> fwd.apply(tapes.make(false)).mul(w).sumNumber().doubleValue();
        Random rnd = new Random(seed);
        if (dx != null && x.dataType().isFPType()) {
            compare("input", x, dx, loss, rnd);
        }
        for (Map.Entry<String, Parameter> e : params.entrySet()) {
            Parameter p = e.getValue();
            if (!p.requiresGrad()) {
                continue;
            }
            assertTrue(p.grad() != null, "no gradient delivered for " + e.getKey());
            compare(e.getKey(), p.data(), p.grad(), loss, rnd);
        }
    }

    private static void compare(String name, INDArray value, INDArray grad, Function<Void, Double> loss, Random rnd) {
        INDArray flat = value.reshape(value.length());
        INDArray g = grad.reshape(grad.length());
        int samples = (int) Math.min(value.length(), 24);
        for (int s = 0; s < samples; s++) {
            long i = samples == value.length() ? s : (long) (rnd.nextDouble() * value.length());
            double orig = flat.getDouble(i);
            flat.putScalar(i, orig + H);
            double plus = loss.apply(null);
            flat.putScalar(i, orig - H);
            double minus = loss.apply(null);
            flat.putScalar(i, orig);
            double numeric = (plus - minus) / (2 * H);
            double analytic = g.getDouble(i);
            double err = Math.abs(numeric - analytic) / Math.max(1e-2, Math.abs(numeric) + Math.abs(analytic));
            assertTrue(err < TOL, String.format("%s[%d]: analytic %.10g vs numeric %.10g (rel %.3g)",
                    name, i, analytic, numeric, err));
        }
    }
}
