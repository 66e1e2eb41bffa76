package dev.collie.core.tensor;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * {@link Kernels} that do the element-wise forwards of small arrays in Java: a decoding step's rows (one per
 * sequence) make each ND4J or oneDNN call cost far more than its arithmetic — RMSNorm of a 768-wide row takes about
 * 200 µs through ND4J's six ops, SiLU·b about 100 µs, against a few µs here. RMSNorm, SiLU·b and rotary of float32 or
 * float64 arrays in dense C order of at most {@link #MAX_ELEMENTS} elements are computed here (in double precision,
 * rounded once to the array's type); larger arrays, every backward and every other kernel go to the wrapped
 * implementation ({@link ForwardingKernels}), so training steps are unchanged.
 */
final class SmallArrayKernels extends ForwardingKernels {
    /** The most elements an array may have to be computed here. */
    static final int MAX_ELEMENTS = 1 << 14;

    SmallArrayKernels(Kernels wrapped) {
        super(wrapped);
    }

    /** Whether {@code x} is computed here: float32 or float64, dense C order, non-empty, small. */
    private static boolean small(INDArray x) {
        DataType t = x.dataType();
        return (t == DataType.FLOAT || t == DataType.DOUBLE) && x.length() > 0 && x.length() <= MAX_ELEMENTS
                && Nd4jKernels.isDense(x);
    }

    private static boolean small(INDArray a, INDArray b) {
        return small(a) && small(b) && a.dataType() == b.dataType();
    }

    @Override
    public INDArray[] rmsNorm(INDArray x, INDArray weight, double eps) {
        if (!small(x, weight)) {
            return super.rmsNorm(x, weight, eps);
        }
        int n = (int) x.size(x.rank() - 1);
        int rows = (int) (x.length() / n);
        double[] v = read(x);
        double[] w = read(weight);
        double[] xhat = new double[v.length];
        double[] y = new double[v.length];
        double[] rstd = new double[rows];
        for (int r = 0; r < rows; r++) {
            int o = r * n;
            double ss = 0;
            for (int i = 0; i < n; i++) {
                ss += v[o + i] * v[o + i];
            }
            rstd[r] = 1 / Math.sqrt(ss / n + eps);
            for (int i = 0; i < n; i++) {
                xhat[o + i] = v[o + i] * rstd[r];
                y[o + i] = xhat[o + i] * w[i];
            }
        }
        long[] rstdShape = x.shape().clone();
        rstdShape[rstdShape.length - 1] = 1;
        return new INDArray[] {write(y, x.dataType(), x.shape()), write(xhat, x.dataType(), x.shape()),
            write(rstd, x.dataType(), rstdShape)};
    }

    @Override
    public INDArray siluMul(INDArray a, INDArray b) {
        if (!small(a, b) || a.length() != b.length()) {
            return super.siluMul(a, b);
        }
        double[] x = read(a);
        double[] g = read(b);
        for (int i = 0; i < x.length; i++) {
            x[i] = x[i] / (1 + Math.exp(-x[i])) * g[i];
        }
        return write(x, a.dataType(), a.shape());
    }

    @Override
    public INDArray rotary(INDArray x, INDArray cos, INDArray sin, int heads, RotaryPairs pairs, boolean inverse) {
        if (!small(x, cos) || !small(sin) || sin.dataType() != x.dataType()) {
            return super.rotary(x, cos, sin, heads, pairs, inverse);
        }
        Nd4jKernels.rotaryRows(x, cos, sin, heads);   // checks the shapes
        double[] v = read(x);
        double[] c = read(cos);
        double[] s = read(sin);
        double[] out = new double[v.length];
        double sign = inverse ? -1 : 1;
        int d = (int) (x.size(1) / heads);
        for (int o = 0; o < v.length; o += d) {
            for (int i = 0; i < d / 2; i++) {
                int a = o + pairs.first(i, d);
                int b = o + pairs.second(i, d);
                out[a] = v[a] * c[a] - sign * v[b] * s[a];
                out[b] = v[b] * c[b] + sign * v[a] * s[b];
            }
        }
        return write(out, x.dataType(), x.shape());
    }

    /** The elements of {@code x} (dense, C order). */
    private double[] read(INDArray x) {
        int n = (int) x.length();
        double[] v = new double[n];
        if (x.dataType() == DataType.DOUBLE) {
            copyBlock(x, 0, v, n, false);
        } else {
            float[] f = new float[n];
            copyBlock(x, 0, f, n, false);
            for (int i = 0; i < n; i++) {
                v[i] = f[i];
            }
        }
        return v;
    }

    /** A new array of {@code type} and {@code shape} holding {@code v}, each rounded once. */
    private INDArray write(double[] v, DataType type, long[] shape) {
        INDArray out = Nd4j.createUninitialized(type, shape);
        if (type == DataType.DOUBLE) {
            copyBlock(out, 0, v, v.length, true);
        } else {
            float[] f = new float[v.length];
            for (int i = 0; i < v.length; i++) {
                f[i] = (float) v[i];
            }
            copyBlock(out, 0, f, f.length, true);
        }
        return out;
    }
}
