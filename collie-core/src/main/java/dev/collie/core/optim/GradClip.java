package dev.collie.core.optim;

import dev.collie.core.nn.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/** Global-norm gradient clipping with PyTorch's {@code clip_grad_norm_} semantics. */
public final class GradClip {
    private GradClip() {
    }

    /** L2 norm of all gradients together (parameters without a gradient count as zero). */
    public static double globalNorm(Collection<Parameter> params) {
        double sq = 0;
        for (Parameter p : distinct(params)) {
            INDArray g = p.grad();
            if (g != null) {
                double n = g.norm2Number().doubleValue();
                sq += n * n;
            }
        }
        return Math.sqrt(sq);
    }

    /** Scales gradients by {@code maxNorm / (norm + 1e-6)} when that is below one; returns the norm before clipping. */
    public static double clipGlobalNorm(Collection<Parameter> params, double maxNorm) {
        double norm = globalNorm(params);
        scaleToNorm(params, norm, maxNorm);
        return norm;
    }

    /**
     * Scales the gradients of {@code params} by {@code maxNorm / (norm + 1e-6)} when that is below one, for a
     * {@code norm} computed elsewhere (over the ranks of a model split by tensor or pipeline parallelism).
     */
    public static void scaleToNorm(Collection<Parameter> params, double norm, double maxNorm) {
        double coef = maxNorm / (norm + 1e-6);
        if (coef < 1.0) {
            for (Parameter p : distinct(params)) {
                if (p.grad() != null) {
                    p.grad().muli(coef);
                }
            }
        }
    }

    private static Collection<Parameter> distinct(Collection<Parameter> params) {
        Set<Parameter> s = Collections.newSetFromMap(new IdentityHashMap<>());
        List<Parameter> out = new ArrayList<>();
        for (Parameter p : params) {
            if (s.add(p)) {
                out.add(p);
            }
        }
        return out;
    }
}
