package dev.collie.optim;

import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.floating.SquaredNorm;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedDeque;

/** In-place helpers shared by the optimizers: they allocate nothing parameter-sized. */
final class InPlace {
    private InPlace() {
    }

    /** {@code y += alpha·x} (BLAS axpy; same shape, contiguous). */
    static void axpy(double alpha, INDArray x, INDArray y) {
        Nd4j.getBlasWrapper().level1().axpy(x.length(), alpha, x, y);
    }

    /** {@code x ← clamp(x, −limit, limit)} in place. */
    static void clampInPlace(INDArray x, double limit) {
        Transforms.min(x, limit, false);
        Transforms.max(x, -limit, false);
    }

    /**
     * Sum of squares of all elements, accumulated in the array's type and returned as a double: BLAS dot(x, x)
     * for contiguous float/double arrays (memory-bound, ~5× faster than ND4J's reduction), else the reduction.
     */
    static double squaredNorm(INDArray x) {
        DataType t = x.dataType();
        if ((t == DataType.FLOAT || t == DataType.DOUBLE) && x.ordering() == 'c' && !x.isView()) {
            return Nd4j.getBlasWrapper().level1().dot(x.length(), 1.0, x, x);
        }
        return Nd4j.getExecutioner().exec(new SquaredNorm(x)).getDouble(0);
    }

    /**
     * {@code x ← alpha·x} in place: BLAS scal for a contiguous array (the same products as ND4J's scalar
     * multiplication, without its scalar array and op), else ND4J's.
     */
    static void scal(double alpha, INDArray x) {
        if (hostContiguous(x)) {
            Nd4j.getBlasWrapper().level1().scal(x.length(), alpha, x);
        } else {
            x.muli(alpha);
        }
    }

    /**
     * Whether the element loops below can read and write {@code x} in place: a FLOAT or DOUBLE array whose elements
     * are one c-ordered run in host memory (a view of contiguous rows qualifies, a transpose does not).
     */
    static boolean hostContiguous(INDArray x) {
        DataType t = x.dataType();
        return (t == DataType.FLOAT || t == DataType.DOUBLE) && x.ordering() == 'c'
                && Shape.hasDefaultStridesForShape(x);
    }

    /**
     * Row and column sums of squares of the {@code [rows, cols]} matrix {@code g} ({@link #hostContiguous}):
     * {@code rowOut[i] = Σ_j g[i,j]²}, {@code colOut[j] = Σ_i g[i,j]²}, both accumulated in float64 and read in one
     * pass over blocks of rows copied into {@code w}'s reused arrays. Nothing is allocated: no squared copy of
     * {@code g}, no temporary arrays, no ND4J op.
     */
    static void squaredSums(INDArray g, long rows, int cols, double[] rowOut, double[] colOut, Scratch w) {
        Arrays.fill(colOut, 0, cols, 0.0);
        int per = rowsPerBlock(cols);
        for (long i0 = 0; i0 < rows; i0 += per) {
            int n = (int) Math.min(per, rows - i0);
            double[] b = loadBlock(g, i0 * cols, n * cols, w);
            for (int r = 0; r < n; r++) {
                int o = r * cols;
                rowOut[(int) (i0 + r)] = sumOfSquares(b, o, cols);
                for (int j = 0; j < cols; j++) {
                    colOut[j] += b[o + j] * b[o + j];
                }
            }
        }
    }

    /**
     * Elements {@code [from, from + len)} of the host-contiguous FLOAT or DOUBLE array {@code x} as float64 (widened
     * exactly from float32), in {@code w}'s reused array.
     */
    private static double[] loadBlock(INDArray x, long from, int len, Scratch w) {
        if (x.dataType() == DataType.FLOAT) {
            float[] f = w.block32(len);
            Kernels.get().copyBlock(x, from, f, len, false);
            return widen(f, len, w);
        }
        double[] d = w.block64(len);
        Kernels.get().copyBlock(x, from, d, len, false);
        return d;
    }

    /**
     * {@code g[i,j] ← (g[i,j]·rowScale[i])·colScale[j]} in place, in g's type (two roundings, as two broadcast
     * multiplications would make), for the {@code [rows, cols]} matrix {@code g} ({@link #hostContiguous}); returns
     * the sum of squares of the result, accumulated in float64. The scales are float32 values for a FLOAT matrix
     * (exactly representable: products are then those of float32 arithmetic).
     */
    static double scaleRowsAndColumns(INDArray g, long rows, int cols, double[] rowScale, double[] colScale,
                                      Scratch w) {
        int per = rowsPerBlock(cols);
        double sq = 0;
        if (g.dataType() == DataType.FLOAT) {
            float[] b = w.block32(per * cols);
            float[] cs = w.colScale32(cols);
            for (int j = 0; j < cols; j++) {
                cs[j] = (float) colScale[j];
            }
            for (long i0 = 0; i0 < rows; i0 += per) {
                int n = (int) Math.min(per, rows - i0);
                Kernels.get().copyBlock(g, i0 * cols, b, n * cols, false);
                for (int r = 0; r < n; r++) {
                    int o = r * cols;
                    float a = (float) rowScale[(int) (i0 + r)];
                    for (int j = 0; j < cols; j++) {
                        b[o + j] = b[o + j] * a * cs[j];
                    }
                }
                sq += sumOfSquares(widen(b, n * cols, w), 0, n * cols);
                Kernels.get().copyBlock(g, i0 * cols, b, n * cols, true);
            }
        } else {
            double[] b = w.block64(per * cols);
            for (long i0 = 0; i0 < rows; i0 += per) {
                int n = (int) Math.min(per, rows - i0);
                Kernels.get().copyBlock(g, i0 * cols, b, n * cols, false);
                for (int r = 0; r < n; r++) {
                    int o = r * cols;
                    double a = rowScale[(int) (i0 + r)];
                    for (int j = 0; j < cols; j++) {
                        b[o + j] = b[o + j] * a * colScale[j];
                    }
                }
                sq += sumOfSquares(b, 0, n * cols);
                Kernels.get().copyBlock(g, i0 * cols, b, n * cols, true);
            }
        }
        return sq;
    }

    /**
     * Sum of squares of all elements accumulated in float64, in one pass over blocks copied into {@code w}'s reused
     * arrays when {@code x} is {@link #hostContiguous}; else {@link #squaredNorm(INDArray)}. Over the 25M elements of
     * an embedding a float32 BLAS dot is off by ~1e-4 (always low); this is off by ~1e-16.
     */
    static double squaredSum(INDArray x, Scratch w) {
        if (!hostContiguous(x)) {
            return squaredNorm(x);
        }
        long n = x.length();
        double sq = 0;
        for (long k0 = 0; k0 < n; k0 += BLOCK) {
            int len = (int) Math.min(BLOCK, n - k0);
            sq += sumOfSquares(loadBlock(x, k0, len, w), 0, len);
        }
        return sq;
    }

    /** Σ b[from..from+len)², four float64 partial sums (the order every caller relies on for equal results). */
    private static double sumOfSquares(double[] b, int from, int len) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int k = from;
        int end = from + len;
        for (; k + 4 <= end; k += 4) {
            s0 += b[k] * b[k];
            s1 += b[k + 1] * b[k + 1];
            s2 += b[k + 2] * b[k + 2];
            s3 += b[k + 3] * b[k + 3];
        }
        for (; k < end; k++) {
            s0 += b[k] * b[k];
        }
        return (s0 + s1) + (s2 + s3);
    }

    /** {@code f[0, len)} widened exactly to float64, in {@code w}'s reused array. */
    private static double[] widen(float[] f, int len, Scratch w) {
        double[] d = w.block64(len);
        for (int k = 0; k < len; k++) {
            d[k] = f[k];
        }
        return d;
    }

    /** Rows of {@code cols} elements per block: {@link #BLOCK} elements, at least one row. */
    private static int rowsPerBlock(int cols) {
        return Math.max(1, BLOCK / Math.max(1, cols));
    }

    /** Elements per block of the loops above: 256 KiB of float32, an L2-sized piece of the matrix. */
    static final int BLOCK = 1 << 16;

    /** {@code len} elements of {@code a} ({@link #hostContiguous}) from element {@code from}, as doubles, into dst. */
    static void read(INDArray a, long from, double[] dst, int len, Scratch w) {
        if (a.dataType() == DataType.FLOAT) {
            float[] b = w.block32(len);
            Kernels.get().copyBlock(a, from, b, len, false);
            for (int k = 0; k < len; k++) {
                dst[k] = b[k];
            }
        } else {
            Kernels.get().copyBlock(a, from, dst, len, false);
        }
    }

    /** Writes {@code len} values (exactly representable in a's type) into {@code a} from element {@code from}. */
    static void write(INDArray a, long from, double[] src, int len, Scratch w) {
        if (a.dataType() == DataType.FLOAT) {
            float[] b = w.block32(len);
            for (int k = 0; k < len; k++) {
                b[k] = (float) src[k];
            }
            Kernels.get().copyBlock(a, from, b, len, true);
        } else {
            Kernels.get().copyBlock(a, from, src, len, true);
        }
    }

    /**
     * Column sums of squares of a matrix {@code [m, n]}: a vector {@code [n]} of its type, accumulated in float64
     * (see {@link #squaredSums}).
     */
    static INDArray columnSquaredSums(INDArray g) {
        INDArray c = hostContiguous(g) ? g : g.castTo(DataType.DOUBLE).dup('c');
        int n = (int) g.size(1);
        double[] cols = new double[n];
        squaredSums(c, g.size(0), n, new double[(int) g.size(0)], cols, new Scratch());
        return Nd4j.createFromArray(cols).castTo(g.dataType());
    }

    /**
     * Reused Java arrays for the element loops: a block of the matrix being read and per-row and per-column
     * numbers. Each grows to the largest size asked for and is then kept, so a step allocates nothing.
     * Not thread-safe: one user at a time (see {@link Pool}).
     */
    static final class Scratch {
        private float[] block32 = new float[0];
        private double[] block64 = new double[0];
        private float[] colScale32 = new float[0];
        private final double[][] vectors = new double[4][0];

        float[] block32(int n) {
            if (block32.length < n) {
                block32 = new float[n];
            }
            return block32;
        }

        double[] block64(int n) {
            if (block64.length < n) {
                block64 = new double[n];
            }
            return block64;
        }

        float[] colScale32(int n) {
            if (colScale32.length < n) {
                colScale32 = new float[n];
            }
            return colScale32;
        }

        /** Reused vector number {@code i} (0..3) of at least {@code n} doubles. */
        double[] vector(int i, int n) {
            if (vectors[i].length < n) {
                vectors[i] = new double[n];
            }
            return vectors[i];
        }

        /** Bytes held. */
        long bytes() {
            long b = 4L * block32.length + 8L * block64.length + 4L * colScale32.length;
            for (double[] v : vectors) {
                b += 8L * v.length;
            }
            return b;
        }
    }

    /** Scratch for hooks that may run side by side on worker threads: one per concurrent user, reused. */
    static final class Pool {
        private final ConcurrentLinkedDeque<Scratch> free = new ConcurrentLinkedDeque<>();

        Scratch take() {
            Scratch s = free.pollFirst();
            return s != null ? s : new Scratch();
        }

        void give(Scratch s) {
            free.addFirst(s);
        }
    }

    /**
     * Sums {@code v[0..n)} (in place; may be null) and {@code scalars} over the ranks of {@code group} in one
     * all-reduce, carried in float64; returns the summed scalars.
     */
    static double[] sumOver(Communicator group, double[] v, int n, double... scalars) {
        int len = v == null ? 0 : n;
        double[] packed = new double[len + scalars.length];
        if (len > 0) {
            System.arraycopy(v, 0, packed, 0, len);
        }
        System.arraycopy(scalars, 0, packed, len, scalars.length);
        INDArray wire = Nd4j.createFromArray(packed);
        group.allReduce(wire, ReduceOp.SUM);
        double[] summed = wire.toDoubleVector();
        if (len > 0) {
            System.arraycopy(summed, 0, v, 0, len);
        }
        double[] out = new double[scalars.length];
        System.arraycopy(summed, len, out, 0, scalars.length);
        return out;
    }

    /** Root mean square, {@code ‖x‖₂/√n}. */
    static double rms(INDArray x) {
        return Math.sqrt(squaredNorm(x) / x.length());
    }

    /** A zero array outside any workspace (optimizer state must survive the step's scratch scope). */
    static INDArray zerosOutside(DataType dtype, long... shape) {
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            return Nd4j.zeros(dtype, shape);
        }
    }

    /** A copy of {@code x} outside any workspace. */
    static INDArray copyOutside(INDArray x) {
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            return x.dup('c');
        }
    }
}
