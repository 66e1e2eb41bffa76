package dev.collie.optim;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.floating.RSqrt;
import org.nd4j.linalg.factory.Nd4j;

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
                ? new INDArray[] {Ops.zerosOutside(q.dtype(), q.shape()[0]), Ops.zerosOutside(q.dtype(), q.shape()[1])}
                : new INDArray[] {Ops.zerosOutside(q.dtype(), q.shape())});
    }

    @Override
    void apply(Parameter p, INDArray g, double lr, long step) {
        double beta2t = 1.0 - Math.pow(step, decayRate);
        INDArray[] s = stateOf(p);
        // a tensor-parallel shard: statistics of the whole tensor are sums over the group (see the class comment)
        int split = p.shardDim();
        Communicator group = p.shardGroup();
        long[] full = p.fullShape();
        if (factored(p)) {
            long rows = g.size(0);
            long cols = g.size(1);
            INDArray r = s[0];
            INDArray c = s[1];
            INDArray rowSq = Ops.squaredNorm(g, 1);
            INDArray colSq = Ops.columnSquaredSums(g);
            double sumR = Double.NaN;
            if (split == 1) {
                // split along columns: each rank holds part of every row, whose sums add up over the group
                rowSq = Ops.sumOver(group, rowSq);
            }
            r.muli(beta2t);
            Ops.axpy(1 - beta2t, rowSq.divi(full[1]).addi(eps1), r);
            if (split == 0) {
                // columns summed over every rank's rows, and mean(R) over every rank's rows: one message
                double[] both = Ops.sumOver(group, colSq, r.sumNumber().doubleValue());
                sumR = both[0];
            }
            c.muli(beta2t);
            Ops.axpy(1 - beta2t, colSq.divi(full[0]).addi(eps1), c);
            double meanR = split == 0 ? sumR / full[0] : r.meanNumber().doubleValue();
            INDArray rf = r.div(meanR);
            Nd4j.exec(new RSqrt(rf, rf));
            INDArray cf = c.dup();
            Nd4j.exec(new RSqrt(cf, cf));
            g.muliColumnVector(rf.reshape(rows, 1)).muliRowVector(cf.reshape(1, cols));
        } else {
            INDArray v = s[0];
            v.muli(beta2t);
            Ops.axpy(1 - beta2t, g.mul(g).addi(eps1), v);
            INDArray vf = v.dup();
            Nd4j.exec(new RSqrt(vf, vf));
            g.muli(vf);
        }
        INDArray theta = p.data();
        double uSq;
        double thetaSq;
        if (split >= 0) {
            double[] sq = Ops.sumOver(group, null, Ops.squaredNorm(g), Ops.squaredNorm(theta));
            uSq = sq[0];
            thetaSq = sq[1];
        } else {
            uSq = Ops.squaredNorm(g);
            thetaSq = Ops.squaredNorm(theta);
        }
        long numel = 1;
        for (long d : full) {
            numel *= d;
        }
        double shrink = Math.sqrt(uSq / numel) / clipThreshold;
        if (shrink > 1) {
            g.divi(shrink);
        }
        double lrT = lr * Math.max(eps2, Math.sqrt(thetaSq / numel));
        if (weightDecay != 0) {
            theta.muli(1 - lrT * weightDecay);
        }
        Ops.axpy(-lrT, g, theta);
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
