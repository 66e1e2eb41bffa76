package dev.collie.core.tensor;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * Resolves {@link MatmulPrecisionSetting#AUTO}: times a step's own matrix products with fp32 products and with bf16
 * ones and takes bf16 only where it is at least {@link #BF16_MIN_SPEEDUP}× as fast. Whether bf16 products pay is a
 * property of the CPU, not of collie: oneDNN 3.3 runs them on AMX tiles on Intel Xeons that have AMX (1.6–1.9×
 * faster training in docs/benchmarks.md), but on CPUs with {@code avx512_bf16} and no AMX (AMD Zen 4/5) they are
 * 2–3× slower than its fp32 GEMM. Where oneDNN 3.3 is unavailable (missing, switched off with {@code -Dcollie.onednn3=off}) or ND4J's backend
 * is not the CPU, AUTO is FP32 without a probe.
 *
 * <p>The probe: each {@link Shape} is a linear layer's forward product {@code x[rows, in] · W[out, in]ᵀ}, called
 * exactly as {@code Linear} calls it ({@code Kernels.get().matmul(x, W, false, true, y)}), so the fp32 run takes ND4J's
 * oneDNN GEMM and the bf16 run oneDNN 3.3's, as in training. Products larger than {@link #MAX_SHAPE_FLOPS} are cut to
 * fewer output columns (then, where that is not enough, fewer rows; the reduction length {@code in} is kept), so a 1B
 * model probes as quickly as a small one; columns go first because the rows set how far bf16's per-call rounding of
 * the weights is amortised, and so its speed-up. One warm-up call per shape and precision, then passes over the
 * shapes, each shape timed both ways back to back (the order alternating between passes, so that on a busy machine
 * both see the same load): at least {@link #MIN_PASSES}, more while the {@link #DEFAULT_BUDGET} lasts, at most
 * {@link #MAX_PASSES}. Each precision's time is the sum over the shapes of its fastest call.
 * It sets the process-wide precision while it runs and restores it after: call it at start, before any other thread
 * computes products.
 */
public final class MatmulProbe {
    /** bf16 products are taken when fp32's time ÷ bf16's is at least this: bf16 also costs precision. */
    public static final double BF16_MIN_SPEEDUP = 1.10;
    /** The wall time (warm-up included) after which no further pass starts once {@link #MIN_PASSES} have run. */
    public static final Duration DEFAULT_BUDGET = Duration.ofMillis(1500);
    /** Timed passes at least, even past the budget. */
    public static final int MIN_PASSES = 3;
    /** Timed passes at most. */
    public static final int MAX_PASSES = 7;
    /** Floating-point operations (2 × multiply-adds) of the largest product timed; larger ones are cut. */
    public static final double MAX_SHAPE_FLOPS = 5e8;
    private static final long MIN_ROWS = 128;
    private static final long MIN_OUT = 512;

    private MatmulProbe() {
    }

    /** A linear layer's forward product {@code x[rows, in] · W[out, in]ᵀ}. */
    public record Shape(long rows, long in, long out) {
        public Shape {
            if (rows < 1 || in < 1 || out < 1) {
                throw new IllegalArgumentException("a product's sizes must be positive: " + rows + " × " + in + " · "
                        + in + " × " + out);
            }
        }

        /** Floating-point operations of the product: {@code 2·rows·in·out}. */
        public double flops() {
            return 2.0 * rows * in * out;
        }

        @Override
        public String toString() {
            return rows + "x" + in + "·" + in + "x" + out;
        }
    }

    /**
     * The precision to use and how it was chosen: {@code setting} as asked; for AUTO either the probe's times
     * ({@link #probed()}: over {@code passes} passes, the sum over {@code shapes} of each one's fastest call at that
     * precision, the whole probe taking {@code wallMs} of which {@code warmupMs} went to allocating and the warm-up
     * calls, where a process's first products also start oneDNN's threads and compile its kernels) or, without a probe, {@code reason}.
     */
    public record Result(MatmulPrecisionSetting setting, MatmulPrecision precision, String reason, double fp32Ms,
                         double bf16Ms, List<Shape> shapes, int passes, double warmupMs, double wallMs) {
        public Result {
            Objects.requireNonNull(setting, "setting");
            Objects.requireNonNull(precision, "precision");
            shapes = List.copyOf(shapes);
        }

        static Result fixed(MatmulPrecisionSetting setting) {
            return new Result(setting, setting.fixed(), null, Double.NaN, Double.NaN, List.of(), 0, 0, 0);
        }

        static Result unprobed(String reason) {
            return new Result(MatmulPrecisionSetting.AUTO, MatmulPrecision.FP32, reason, Double.NaN, Double.NaN,
                    List.of(), 0, 0, 0);
        }

        /** Whether the choice was measured. */
        public boolean probed() {
            return setting == MatmulPrecisionSetting.AUTO && reason == null;
        }

        /**
         * One line for a log: {@code matmul precision fp32}, {@code matmul precision auto → fp32 (probe: fp32 12.3 ms,
         * bf16 35.1 ms over 4 shapes, best of 3 passes, in 0.31 s with 0.12 s of warm-up; bf16 needs 1.10x fp32's
         * speed)} or
         * {@code matmul precision auto → fp32 (no probe: ...)}.
         */
        public String describe() {
            String p = precision.name().toLowerCase(Locale.ROOT);
            if (setting != MatmulPrecisionSetting.AUTO) {
                return "matmul precision " + p;
            }
            if (!probed()) {
                return "matmul precision auto → " + p + " (no probe: " + reason + ")";
            }
            return String.format(Locale.ROOT, "matmul precision auto → %s (probe: fp32 %.1f ms, bf16 %.1f ms over %d"
                    + " shape%s, best of %d pass%s, in %.2f s with %.2f s of warm-up; bf16 needs %.2fx fp32's speed)",
                    p, fp32Ms, bf16Ms, shapes.size(), shapes.size() == 1 ? "" : "s", passes, passes == 1 ? "" : "es",
                    wallMs / 1e3, warmupMs / 1e3, BF16_MIN_SPEEDUP);
        }
    }

    /**
     * The decision rule: BF16 when {@code fp32Ms / bf16Ms ≥} {@link #BF16_MIN_SPEEDUP}, else FP32 (also when either
     * time is not a positive number).
     */
    public static MatmulPrecision decide(double fp32Ms, double bf16Ms) {
        if (!(fp32Ms > 0) || !(bf16Ms > 0) || Double.isInfinite(fp32Ms) || Double.isInfinite(bf16Ms)) {
            return MatmulPrecision.FP32;
        }
        return fp32Ms / bf16Ms >= BF16_MIN_SPEEDUP ? MatmulPrecision.BF16 : MatmulPrecision.FP32;
    }

    /**
     * {@code setting} as a precision: FP32 and BF16 as they are (no probe), AUTO through {@link #auto(Supplier)};
     * {@code shapes} is asked for only when a probe runs. Does not set the precision: pass
     * {@link Result#precision()} to {@link Backends#setMatmulPrecision}.
     */
    public static Result resolve(MatmulPrecisionSetting setting, Supplier<List<Shape>> shapes) {
        return setting == MatmulPrecisionSetting.AUTO ? auto(shapes) : Result.fixed(setting);
    }

    /** AUTO: FP32 without a probe where bf16 products cannot run here, else {@link #probe} within the default budget. */
    public static Result auto(Supplier<List<Shape>> shapes) {
        return auto(bf16Unavailable(), shapes, DEFAULT_BUDGET);
    }

    /** AUTO given why bf16 products cannot run ({@code null}: they can). */
    static Result auto(String bf16Unavailable, Supplier<List<Shape>> shapes, Duration budget) {
        if (bf16Unavailable != null) {
            return Result.unprobed(bf16Unavailable);
        }
        List<Shape> list = shapes.get();
        if (list.isEmpty()) {
            return Result.unprobed("no products to time");
        }
        return probe(list, budget);
    }

    /** Why bf16 products cannot run in this process, or null. */
    static String bf16Unavailable() {
        if (!Nd4j.getEnvironment().isCPU()) {
            return "ND4J's backend is not the CPU";
        }
        if (!Backends.dnnlAvailable()) {
            return "oneDNN 3.3 is unavailable (" + Backends.dnnlUnavailableReason() + ")";
        }
        return null;
    }

    /**
     * Times {@code shapes} (cut as the class says) with fp32 and with bf16 products through {@link Kernels#get()},
     * as the class describes, and decides with {@link #decide}. Needs oneDNN 3.3; restores the precision that was set.
     * Where the bf16 products fail, FP32 with the failure as the reason.
     */
    public static Result probe(List<Shape> shapes, Duration budget) {
        long start = System.nanoTime();
        List<Shape> timed = cut(shapes);
        MatmulPrecision before = Backends.matmulPrecision();
        List<INDArray[]> arrays = new ArrayList<>();
        INDArray[] buffers = new INDArray[3];
        try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            // three buffers, each shape's x, W and y the leading part of one (allocating is slow next to the probe);
            // values do not change a GEMM's time, and constants leave ND4J's random generator as it was
            long[] sizes = new long[3];
            for (Shape s : timed) {
                sizes[0] = Math.max(sizes[0], s.rows() * s.in());
                sizes[1] = Math.max(sizes[1], s.out() * s.in());
                sizes[2] = Math.max(sizes[2], s.rows() * s.out());
            }
            buffers[0] = Nd4j.valueArrayOf(new long[] {sizes[0]}, 0.01f);
            buffers[1] = Nd4j.valueArrayOf(new long[] {sizes[1]}, 0.02f);
            buffers[2] = Nd4j.createUninitialized(DataType.FLOAT, sizes[2]);
            for (Shape s : timed) {
                arrays.add(new INDArray[] {lead(buffers[0], s.rows(), s.in()), lead(buffers[1], s.out(), s.in()),
                    lead(buffers[2], s.rows(), s.out())});
            }
            int n = arrays.size();
            double[][] best = new double[2][n];     // per precision (fp32, bf16) and shape: the fastest call
            for (double[] b : best) {
                Arrays.fill(b, Double.POSITIVE_INFINITY);
            }
            for (int i = 0; i < n; i++) {           // warm-up: primitives made, caches filled
                call(arrays.get(i), MatmulPrecision.FP32);
                call(arrays.get(i), MatmulPrecision.BF16);
            }
            double warmupMs = (System.nanoTime() - start) / 1e6;
            long budgetNs = budget.toNanos();
            int passes = 0;
            while (passes < MAX_PASSES) {
                long t0 = System.nanoTime();
                // each shape both ways back to back, the order alternating: on a busy machine both see the same load
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < 2; j++) {
                        int which = (j + passes) % 2;
                        best[which][i] = Math.min(best[which][i], call(arrays.get(i),
                                which == 0 ? MatmulPrecision.FP32 : MatmulPrecision.BF16));
                    }
                }
                passes++;
                long t1 = System.nanoTime();
                if (passes >= MIN_PASSES && t1 - start + (t1 - t0) > budgetNs) {  // another pass would end past it
                    break;
                }
            }
            double fp32 = Arrays.stream(best[0]).sum();
            double bf16 = Arrays.stream(best[1]).sum();
            return new Result(MatmulPrecisionSetting.AUTO, decide(fp32, bf16), null, fp32, bf16, timed, passes,
                    warmupMs, (System.nanoTime() - start) / 1e6);
        } catch (RuntimeException e) {
            return Result.unprobed("the probe failed: " + e);
        } finally {
            Backends.setMatmulPrecision(before);
            for (INDArray b : buffers) {
                if (b != null) {
                    b.close();
                }
            }
        }
    }

    /** The first {@code rows·cols} elements of {@code flat} as a dense {@code [rows, cols]} array. */
    private static INDArray lead(INDArray flat, long rows, long cols) {
        return flat.get(NDArrayIndex.interval(0, rows * cols)).reshape('c', rows, cols);
    }

    /** Milliseconds of one product {@code {x, W, y}} at {@code precision}. */
    private static double call(INDArray[] a, MatmulPrecision precision) {
        Backends.setMatmulPrecision(precision);
        long t0 = System.nanoTime();
        Kernels.get().matmul(a[0], a[1], false, true, a[2]);
        return (System.nanoTime() - t0) / 1e6;
    }

    /** The shapes as timed: each cut to at most {@link #MAX_SHAPE_FLOPS} where it can be, duplicates dropped. */
    static List<Shape> cut(List<Shape> shapes) {
        LinkedHashSet<Shape> out = new LinkedHashSet<>();
        for (Shape s : shapes) {
            out.add(cut(s, MAX_SHAPE_FLOPS));
        }
        return List.copyOf(out);
    }

    /**
     * {@code s} with fewer output columns (not below 512, multiples of 64), then fewer rows (not below 128, multiples
     * of 16) until its product is at most {@code maxFlops}; the reduction length stays.
     */
    static Shape cut(Shape s, double maxFlops) {
        if (s.flops() <= maxFlops) {
            return s;
        }
        long out = Math.min(s.out(), Math.max(Math.min(s.out(), MIN_OUT),
                (long) (maxFlops / (2.0 * s.rows() * s.in())) / 64 * 64));
        long rows = s.rows();
        if (2.0 * rows * s.in() * out > maxFlops) {
            rows = Math.min(s.rows(), Math.max(Math.min(s.rows(), MIN_ROWS),
                    (long) (maxFlops / (2.0 * s.in() * out)) / 16 * 16));
        }
        return new Shape(rows, s.in(), out);
    }
}
