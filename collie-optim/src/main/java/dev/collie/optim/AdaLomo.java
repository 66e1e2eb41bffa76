package dev.collie.optim;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.IdentityHashMap;
import java.util.Map;

/**
 * AdaLomo (Lv et al. 2023, "AdaLomo: Low-memory Optimization with Adaptive Learning Rate"): LOMO's fused
 * update with an Adafactor-style adaptive step and no first moment. At step t (from 1), with
 * {@code β2t = 1 − t^decayRate} and {@code U = g² + eps1}:
 * <ul>
 * <li>matrices {@code [m, n]}: row and column EMAs {@code R ← β2t·R + (1−β2t)·mean_cols(U)},
 *     {@code C ← β2t·C + (1−β2t)·mean_rows(U)}, and {@code u = g / sqrt((R/mean(R)) ⊗ C)};</li>
 * <li>everything else: {@code v ← β2t·v + (1−β2t)·U}, {@code u = g / sqrt(v)};</li>
 * <li>{@code u ← u / max(1, RMS(u)/clipThreshold)}, {@code lr_t = lr·max(eps2, RMS(θ))},
 *     {@code θ ← θ(1 − lr_t·wd) − lr_t·u}.</li>
 * </ul>
 * The gradient is freed in the hook; clipping options as {@link Lomo} (no loss scaler: fp32 on this path).
 * A tensor-parallel shard ({@link Parameter#shardDim()} ≥ 0) is updated as its block of the whole tensor's
 * update: for a matrix split along rows (dimension 0) its row statistics are local, while the column means and
 * mean(R) are summed over the shard group; split along columns the other way round; both RMS values are
 * over the whole tensor. Two small all-reduces per shard, none for a whole parameter.
 * Defaults lr 1e-3, eps 1e-30/1e-3, clip threshold 1, decay rate −0.8, weight decay 0. State: the factored
 * second moment, {@code m + n} numbers per matrix (vectors keep a full one).
 */
public final class AdaLomo extends FusedUpdate {
    /** CoLLiE's default learning rate. */
    public static final double DEFAULT_LR = 1e-3;

    private final double eps1;
    private final double eps2;
    private final double clipThreshold;
    private final double decayRate;
    private final double weightDecay;
    private final Map<Parameter, INDArray[]> state = new IdentityHashMap<>();
    /** Reused Java arrays for the update's element loops (one per hook running at a time). */
    private final InPlace.Pool scratch = new InPlace.Pool();

    /** AdaLomo with CoLLiE's defaults and no gradient clipping. */
    public AdaLomo(Map<String, Parameter> params) {
        this(params, 1e-30, 1e-3, 1.0, -0.8, 0, 0, 0);
    }

    /**
     * @param eps1          added to g² in the second moment
     * @param eps2          floor of RMS(θ) in the relative step size
     * @param clipThreshold RMS bound of the update
     * @param decayRate     exponent of {@code β2t = 1 − t^decayRate} (negative)
     * @param clipGradNorm  global-norm threshold, two backward passes (0 = off)
     * @param clipGradValue element-wise threshold (0 = off)
     */
    public AdaLomo(Map<String, Parameter> params, double eps1, double eps2, double clipThreshold, double decayRate,
                   double clipGradNorm, double clipGradValue, double weightDecay) {
        super(params, clipGradNorm, clipGradValue, null);
        if (!(decayRate < 0)) {
            throw new CollieException("AdaLomo: decay_rate must be negative (β2t = 1 − t^decay_rate), got " + decayRate);
        }
        this.eps1 = eps1;
        this.eps2 = eps2;
        this.clipThreshold = clipThreshold;
        this.decayRate = decayRate;
        this.weightDecay = weightDecay;
    }

    private static boolean factored(Parameter p) {
        return p.shape().length == 2;
    }

    /** Synchronized: hooks of sibling tapes may fire on other threads. */
    private synchronized INDArray[] stateOf(Parameter p) {
        return state.computeIfAbsent(p, q -> factored(q)
                ? new INDArray[] {InPlace.zerosOutside(q.dtype(), q.shape()[0]), InPlace.zerosOutside(q.dtype(), q.shape()[1])}
                : new INDArray[] {InPlace.zerosOutside(q.dtype(), q.shape())});
    }

    /**
     * The update, formed in the spent gradient buffer {@code g} with no parameter-sized temporary: the row and column
     * sums of g² come from one pass over blocks of rows (accumulated in float64), the factored statistics and the
     * scales {@code 1/√(R/mean(R))}, {@code 1/√C} are worked out in reused Java arrays, and a second pass scales g
     * into u in place while summing u². Every element-wise step is rounded to the parameter's type as the ND4J
     * ops it replaces rounded it; the sums (g², u², θ²) are accumulated in float64. What remains of ND4J is BLAS
     * on whole arrays (weight decay, the update) and, when the RMS clip acts, one scalar division: no op
     * allocates, and a step makes next to no Java garbage.
     */
    @Override
    void apply(Parameter p, INDArray g, double lr, long step) {
        DataType type = p.dtype();
        if (type != DataType.FLOAT && type != DataType.DOUBLE) {
            throw new CollieException("AdaLomo updates FLOAT and DOUBLE parameters, got " + type + " for " + p);
        }
        if (g.length() != p.numel()) {
            throw new IllegalArgumentException("gradient of " + g.length() + " elements for " + p);
        }
        if (g.dataType() != type || !InPlace.hostContiguous(g)) {
            g = g.castTo(type).dup('c');   // a strided view or another type (no model lends one): its elements in order
        }
        double beta2t = 1.0 - Math.pow(step, decayRate);
        INDArray[] s = stateOf(p);
        // a tensor-parallel shard: statistics of the whole tensor are sums over the group (see the class comment)
        int split = p.shardDim();
        Communicator group = p.shardGroup();
        long[] full = p.fullShape();
        long numel = 1;
        for (long d : full) {
            numel *= d;
        }
        INDArray theta = p.data();
        InPlace.Scratch w = scratch.take();
        double uSq;
        double thetaSq;
        try {
            uSq = factored(p) ? factoredUpdate(p, g, s, beta2t, split, group, full, w) : fullUpdate(g, s[0], beta2t, w);
            thetaSq = InPlace.squaredSum(theta, w);
        } finally {
            scratch.give(w);
        }
        if (split >= 0) {
            double[] sq = InPlace.sumOver(group, null, 0, uSq, thetaSq);
            uSq = sq[0];
            thetaSq = sq[1];
        }
        double shrink = Math.sqrt(uSq / numel) / clipThreshold;
        if (shrink > 1) {
            g.divi(shrink);
        }
        double lrT = lr * Math.max(eps2, Math.sqrt(thetaSq / numel));
        if (weightDecay != 0) {
            InPlace.scal(1 - lrT * weightDecay, theta);
        }
        InPlace.axpy(-lrT, g, theta);
    }

    /**
     * {@code x} rounded to the parameter's type. float32 arithmetic done in float64 and rounded after each
     * operation gives exactly the float32 results (+, −, ×, ÷ and √ are correctly rounded either way).
     */
    private static double round(double x, boolean single) {
        return single ? (float) x : x;
    }

    /** R, C and u = g / √((R/mean(R)) ⊗ C) in g; returns Σu² over this block of the tensor. */
    private double factoredUpdate(Parameter p, INDArray g, INDArray[] s, double beta2t, int split, Communicator group,
                                  long[] full, InPlace.Scratch w) {
        boolean single = p.dtype() == DataType.FLOAT;
        int rows = Math.toIntExact(p.shape()[0]);
        int cols = Math.toIntExact(p.shape()[1]);
        double beta = round(beta2t, single);
        double alpha = round(1 - beta2t, single);
        double e1 = round(eps1, single);
        double[] rowSq = w.vector(0, rows);
        double[] colSq = w.vector(1, cols);
        InPlace.squaredSums(g, rows, cols, rowSq, colSq, w);
        if (split == 1) {
            // split along columns: each rank holds part of every row, whose sums add up over the group
            InPlace.sumOver(group, rowSq, rows);
        }
        // R ← β2t·R + (1−β2t)·(rowSq/cols + eps1), each operation rounded as ND4J's ops round it
        double[] r = w.vector(2, rows);
        InPlace.read(s[0], 0, r, rows, w);
        double sumR = 0;
        for (int i = 0; i < rows; i++) {
            double u = round(round(rowSq[i] / full[1], single) + e1, single);
            r[i] = round(round(beta * r[i], single) + round(alpha * u, single), single);
            sumR += r[i];
        }
        InPlace.write(s[0], 0, r, rows, w);
        if (split == 0) {
            // columns summed over every rank's rows, and mean(R) over every rank's rows: one message
            sumR = InPlace.sumOver(group, colSq, cols, sumR)[0];
        }
        double[] c = w.vector(3, cols);
        InPlace.read(s[1], 0, c, cols, w);
        for (int j = 0; j < cols; j++) {
            double u = round(round(colSq[j] / full[0], single) + e1, single);
            c[j] = round(round(beta * c[j], single) + round(alpha * u, single), single);
        }
        InPlace.write(s[1], 0, c, cols, w);
        double meanR = round(sumR / (split == 0 ? full[0] : rows), single);
        // the scales 1/√(R/mean(R)) and 1/√C, in the places of rowSq and colSq
        for (int i = 0; i < rows; i++) {
            rowSq[i] = rsqrt(round(r[i] / meanR, single), single);
        }
        for (int j = 0; j < cols; j++) {
            colSq[j] = rsqrt(c[j], single);
        }
        return InPlace.scaleRowsAndColumns(g, rows, cols, rowSq, colSq, w);
    }

    private static double rsqrt(double x, boolean single) {
        return round(1.0 / round(Math.sqrt(x), single), single);
    }

    /** v ← β2t·v + (1−β2t)·(g² + eps1) and u = g/√v in g; returns Σu². */
    private double fullUpdate(INDArray g, INDArray v, double beta2t, InPlace.Scratch w) {
        boolean single = g.dataType() == DataType.FLOAT;
        double beta = round(beta2t, single);
        double alpha = round(1 - beta2t, single);
        double e1 = round(eps1, single);
        long n = g.length();
        int block = (int) Math.min(n, InPlace.BLOCK);
        double[] gb = w.vector(0, block);
        double[] vb = w.vector(1, block);
        double sq = 0;
        for (long k0 = 0; k0 < n; k0 += block) {
            int len = (int) Math.min(block, n - k0);
            InPlace.read(g, k0, gb, len, w);
            InPlace.read(v, k0, vb, len, w);
            for (int k = 0; k < len; k++) {
                double x = gb[k];
                double add = round(alpha * round(round(x * x, single) + e1, single), single);
                double vk = round(round(beta * vb[k], single) + add, single);
                vb[k] = vk;
                double u = round(x * rsqrt(vk, single), single);
                gb[k] = u;
                sq += u * u;
            }
            InPlace.write(v, k0, vb, len, w);
            InPlace.write(g, k0, gb, len, w);
        }
        return sq;
    }

    @Override
    public Map<String, INDArray> stateDict() {
        Map<String, INDArray> out = baseState();
        parameters().forEach((name, p) -> {
            INDArray[] s = state.get(p);
            if (s != null) {
                if (s.length == 2) {
                    out.putIfAbsent(name + ".exp_avg_sq_row", s[0]);
                    out.putIfAbsent(name + ".exp_avg_sq_col", s[1]);
                } else {
                    out.putIfAbsent(name + ".exp_avg_sq", s[0]);
                }
            }
        });
        return out;
    }

    @Override
    public void loadStateDict(Map<String, INDArray> saved) {
        loadBaseState(saved);
        parameters().forEach((name, p) -> {
            String[] keys = factored(p) ? new String[] {name + ".exp_avg_sq_row", name + ".exp_avg_sq_col"}
                    : new String[] {name + ".exp_avg_sq"};
            if (!saved.containsKey(keys[0])) {
                return;
            }
            INDArray[] s = stateOf(p);
            for (int i = 0; i < keys.length; i++) {
                INDArray v = saved.get(keys[i]);
                if (v == null) {
                    throw new CollieException("optimizer state lacks " + keys[i]);
                }
                s[i].assign(v.reshape(s[i].shape()));
            }
        });
    }

    @Override
    public long stateBytes() {
        return Optimizer.bytesOf(state.values());
    }
}
