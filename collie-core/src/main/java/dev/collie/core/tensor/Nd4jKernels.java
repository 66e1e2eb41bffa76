package dev.collie.core.tensor;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.api.ops.impl.updaters.AdamUpdater;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.Arrays;

import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/**
 * {@link Kernels} on ND4J ops alone (the CPU backend, and ND4J's CUDA backend where its binaries run); where
 * oneDNN 3.3 is present, {@link DnnlKernels} takes what it does faster and hands the rest here.
 */
final class Nd4jKernels implements Kernels {
    static final Nd4jKernels INSTANCE = new Nd4jKernels();
    /** √(2/π) and the cube's coefficient inside gelu_new's tanh. */
    private static final double GELU_SCALE = Math.sqrt(2.0 / Math.PI);
    private static final double GELU_CUBE = 0.044715;

    private Nd4jKernels() {
    }

    @Override
    public INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB) {
        return matmul(a, b, transA, transB, null);
    }

    @Override
    public INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB, INDArray into) {
        // the Mmul custom op is the path that reaches oneDNN's GEMM (INDArray.mmul and Nd4j.matmul go to
        // OpenBLAS through the Java BLAS wrapper, 2-3x slower here; see docs/design-notes.md)
        INDArray out = productOut(a, b, transA, transB, into);
        INDArray dense = isDense(out) ? out : Nd4j.createUninitialized(a.dataType(), out.shape());
        Nd4j.exec(new Mmul(plain(a), plain(b), dense,
                MMulTranspose.builder().transposeA(transA).transposeB(transB).build()));
        return dense == out ? out : out.assign(dense);
    }

    /** Where {@code op(a)·op(b)} goes: {@code into} when it has the product's shape and type (else an error), or a new array. */
    static INDArray productOut(INDArray a, INDArray b, boolean transA, boolean transB, INDArray into) {
        int r = a.rank();
        long[] shape = a.shape().clone();
        shape[r - 2] = transA ? a.size(r - 1) : a.size(r - 2);
        shape[r - 1] = transB ? b.size(r - 2) : b.size(r - 1);
        if (into == null) {
            return Nd4j.createUninitialized(a.dataType(), shape);
        }
        if (!Arrays.equals(into.shape(), shape) || into.dataType() != a.dataType()) {
            throw new IllegalArgumentException("product output " + Arrays.toString(into.shape()) + " "
                    + into.dataType() + ", expected " + Arrays.toString(shape) + " " + a.dataType());
        }
        return into;
    }

    /** A batched operand as ND4J's Mmul takes it: C-ordered without gaps (a copy of a permuted view); rank 2 as it is. */
    private static INDArray plain(INDArray x) {
        return x.rank() <= 2 || isDense(x) ? x : x.dup('c');
    }

    @Override
    public INDArray rotary(INDArray x, INDArray cos, INDArray sin, int heads, RotaryPairs pairs, boolean inverse) {
        INDArray rows = rotaryRows(x, cos, sin, heads);
        long n = x.size(0);
        long d = x.size(1) / heads;
        INDArray out = Nd4j.createUninitialized(x.dataType(), n, x.size(1));
        out.assign(rows.mul(cos));
        float sign = inverse ? -1f : 1f;
        // the two dimensions of every pair as views [n, heads, d/2]: halves, or even and odd positions
        INDArray[] xs = pairs.split(rows.reshape('c', n, heads, d));
        INDArray[] os = pairs.split(out.reshape('c', n, heads, d));
        INDArray[] ss = pairs.split(sin.reshape('c', n, heads, d));
        os[0].subi(xs[1].mul(ss[0]).muli(sign));
        os[1].addi(xs[0].mul(ss[1]).muli(sign));
        return out;
    }

    /** Checks a rotary call's shapes; returns {@code x} as dense C-ordered rows (a copy of a view with gaps). */
    static INDArray rotaryRows(INDArray x, INDArray cos, INDArray sin, int heads) {
        if (x.size(1) % (2L * heads) != 0 || !Arrays.equals(cos.shape(), x.shape())
                || !Arrays.equals(sin.shape(), x.shape())) {
            throw new IllegalArgumentException("rotary of " + Arrays.toString(x.shape()) + " as " + heads
                    + " heads with tables " + Arrays.toString(cos.shape()));
        }
        return isDense(x) ? x : x.dup('c');
    }

    @Override
    public void scaleSubtract(INDArray x, double c, INDArray y) {
        if (c != 1) {
            x.muli(c);
        }
        x.subi(y);
    }

    @Override
    public void adamW(INDArray param, INDArray grad, INDArray m, INDArray v, AdamWStep s) {
        // libnd4j's fused adam_updater computes lr·sqrt(1−β2ᵗ)/(1−β1ᵗ) · m / (sqrt(v) + ε'); with
        // ε' = ε·sqrt(1−β2ᵗ) that is exactly PyTorch's lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + ε).
        // One pass over the parameter instead of a dozen; the update overwrites the (spent) gradient.
        double epsPrime = s.eps() * Math.sqrt(1 - Math.pow(s.beta2(), s.step()));
        Nd4j.exec(new AdamUpdater(grad, v, m, grad, v, m, s.lr(), s.beta1(), s.beta2(), epsPrime,
                (int) (s.step() - 1)));
        // the decay and the step in one pass: param·(1 − lr·wd) − update
        Kernels.get().scaleSubtract(param, 1 - s.lr() * s.weightDecay(), grad);
    }

    @Override
    public void lion(INDArray param, INDArray grad, INDArray m, double lr, double beta1, double beta2,
                     double weightDecay) {
        if (weightDecay != 0) {
            param.muli(1 - lr * weightDecay);
        }
        var blas = Nd4j.getBlasWrapper().level1();
        INDArray c = m.mul(beta1);
        blas.axpy(grad.length(), 1 - beta1, grad, c);
        Transforms.sign(c, false);
        blas.axpy(c.length(), -lr, c, param);
        m.muli(beta2);
        blas.axpy(grad.length(), 1 - beta2, grad, m);
    }

    @Override
    public void adan(INDArray param, INDArray grad, INDArray m, INDArray v, INDArray n, INDArray negPre, AdanStep s) {
        var blas = Nd4j.getBlasWrapper().level1();
        if (s.step() == 1) {
            negPre.assign(grad).negi();             // no previous gradient: Δ = 0
        }
        INDArray diff = negPre.addi(grad);          // the buffer now holds Δ = g − g_prev
        m.muli(s.beta1());
        blas.axpy(grad.length(), 1 - s.beta1(), grad, m);
        v.muli(s.beta2());
        blas.axpy(diff.length(), 1 - s.beta2(), diff, v);
        INDArray u = diff.muli(s.beta2()).addi(grad);   // u = g + β2·Δ, in the same buffer
        u.muli(u);
        n.muli(s.beta3());
        blas.axpy(u.length(), 1 - s.beta3(), u, n);
        double bc1 = 1 - Math.pow(s.beta1(), s.step());
        double bc2 = 1 - Math.pow(s.beta2(), s.step());
        double bc3 = 1 - Math.pow(s.beta3(), s.step());
        INDArray denom = Transforms.sqrt(n, true).divi(Math.sqrt(bc3)).addi(s.eps());   // scratch workspace
        if (s.noProx() && s.weightDecay() != 0) {
            param.muli(1 - s.lr() * s.weightDecay());
        }
        u.assign(m).divi(denom);
        blas.axpy(u.length(), -s.lr() / bc1, u, param);
        u.assign(v).divi(denom);
        blas.axpy(u.length(), -s.lr() * s.beta2() / bc2, u, param);
        if (!s.noProx() && s.weightDecay() != 0) {
            param.divi(1 + s.lr() * s.weightDecay());
        }
        negPre.assign(grad).negi();
    }

    @Override
    public void sophiaG(INDArray param, INDArray grad, INDArray m, INDArray h, double lr, double beta1, double rhoBs,
                        double weightDecay) {
        var blas = Nd4j.getBlasWrapper().level1();
        if (weightDecay != 0) {
            param.muli(1 - lr * weightDecay);
        }
        m.muli(beta1);
        blas.axpy(grad.length(), 1 - beta1, grad, m);
        INDArray denom = h.mul(rhoBs).addi(1e-15);        // scratch workspace
        INDArray ratio = grad.assign(m);                   // the spent gradient buffer holds the ratio
        Transforms.abs(ratio, false);
        ratio.divi(denom);
        Transforms.min(ratio, 1.0, false);
        Transforms.sign(denom.assign(m), false);
        ratio.muli(denom);
        blas.axpy(ratio.length(), -lr, ratio, param);
    }

    @Override
    public INDArray softmax(INDArray x) {
        INDArray out = Nd4j.createUninitialized(x.dataType(), x.shape());
        Nd4j.exec(new SoftMax(x, out, x.rank() - 1));
        return out;
    }

    @Override
    public INDArray causalSoftmaxInPlace(INDArray scores, int t, int window) {
        CausalMask.addTo(scores, t, window);
        Nd4j.exec(new SoftMax(scores, scores, scores.rank() - 1));
        return scores;
    }

    @Override
    public INDArray softmaxBackward(INDArray p, INDArray dp) {
        // dS = p * (dp - sum(p * dp)), rows as a 2-D view, computed in place on dp's copy
        long cols = p.size(p.rank() - 1);
        INDArray p2 = p.reshape('c', p.length() / cols, cols);
        INDArray d2 = dp.dup('c').reshape('c', p.length() / cols, cols);
        INDArray rowSum = p2.mul(d2).sum(1);
        return d2.subiColumnVector(rowSum.reshape(rowSum.length(), 1)).muli(p2).reshape(p.shape());
    }

    @Override
    public INDArray[] rmsNorm(INDArray x, INDArray weight, double eps) {
        int last = x.rank() - 1;
        INDArray ms = x.mul(x).mean(true, last);
        INDArray rstd = Transforms.sqrt(ms.addi(eps), false).rdivi(1.0);
        INDArray xhat = x.mul(rstd);
        INDArray y = xhat.mul(weight);
        return new INDArray[] {y, xhat, rstd};
    }

    @Override
    public INDArray[] rmsNormBackward(INDArray dy, INDArray xhat, INDArray rstd, INDArray weight, boolean needWeightGrad) {
        int last = dy.rank() - 1;
        INDArray dw = null;
        if (needWeightGrad) {
            INDArray prod = dy.mul(xhat);
            dw = prod.reshape(-1, prod.size(last)).sum(0);
        }
        INDArray g = dy.mul(weight);
        INDArray c = g.mul(xhat).mean(true, last);
        INDArray dx = g.subi(xhat.mul(c)).muli(rstd);
        return new INDArray[] {dx, dw};
    }

    @Override
    public INDArray[] layerNorm(INDArray x, INDArray weight, INDArray bias, double eps) {
        int last = x.rank() - 1;
        INDArray xhat = x.sub(x.mean(true, last));
        INDArray var = xhat.mul(xhat).mean(true, last);
        INDArray rstd = Transforms.sqrt(var.addi(eps), false).rdivi(1.0);
        xhat.muli(rstd);
        INDArray y = xhat.mul(weight).addi(bias);
        return new INDArray[] {y, xhat, rstd};
    }

    @Override
    public INDArray[] layerNormBackward(INDArray dy, INDArray xhat, INDArray rstd, INDArray weight,
                                        boolean needParamGrads) {
        int last = dy.rank() - 1;
        INDArray dw = null;
        INDArray db = null;
        if (needParamGrads) {
            INDArray prod = dy.mul(xhat);
            dw = prod.reshape(-1, prod.size(last)).sum(0);
            db = dy.reshape(-1, dy.size(last)).sum(0);
        }
        // dx = rstd · (g − mean(g) − xhat · mean(g · xhat)), g = dy · weight
        INDArray g = dy.mul(weight);
        INDArray meanG = g.mean(true, last);
        INDArray meanGx = g.mul(xhat).mean(true, last);
        INDArray dx = g.subi(meanG).subi(xhat.mul(meanGx)).muli(rstd);
        return new INDArray[] {dx, dw, db};
    }

    @Override
    public INDArray geluTanh(INDArray x) {
        // in transformers' order: 0.5·x · (1 + tanh(√(2/π) · (x + 0.044715·x³)))
        INDArray t = x.mul(x).muli(x).muli(GELU_CUBE).addi(x).muli(GELU_SCALE);
        Transforms.tanh(t, false);
        return x.mul(0.5).muli(t.addi(1.0));
    }

    @Override
    public INDArray geluTanhBackward(INDArray dy, INDArray x) {
        INDArray x2 = x.mul(x);
        INDArray t = x2.mul(GELU_CUBE).addi(1.0).muli(x).muli(GELU_SCALE);
        Transforms.tanh(t, false);
        // gelu'(x) = 0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²)
        INDArray inner = x2.muli(3 * GELU_CUBE).addi(1.0).muli(GELU_SCALE);
        INDArray d = t.mul(t).rsubi(1.0).muli(inner).muli(x).muli(0.5);
        return d.addi(t.addi(1.0).muli(0.5)).muli(dy);
    }

    @Override
    public INDArray siluMul(INDArray a, INDArray b) {
        INDArray sig = Transforms.sigmoid(a, true);
        return sig.muli(a).muli(b);
    }

    @Override
    public INDArray[] siluMulBackward(INDArray dy, INDArray a, INDArray b) {
        INDArray sig = Transforms.sigmoid(a, true);
        INDArray silu = a.mul(sig);
        INDArray db = dy.mul(silu);
        // d silu / da = sig * (1 + a * (1 - sig)) = sig + silu * (1 - sig)
        INDArray dsilu = sig.rsub(1.0).muli(silu).addi(sig);
        INDArray da = dsilu.muli(dy).muli(b);
        return new INDArray[] {da, db};
    }

    @Override
    public INDArray gatherRows(INDArray table, INDArray ids) {
        INDArray flat = ids.reshape(ids.length());
        INDArray out = Nd4j.createUninitialized(table.dataType(), flat.length(), table.size(1));
        gather(table, flat, out);
        return out;
    }

    @Override
    public void scatterAddRows(INDArray target, INDArray ids, INDArray updates) {
        long[] at = ids.reshape(ids.length()).toLongVector();
        long[] order = new long[at.length];        // (row, i), sorted: each row's updates together, in order of i
        for (int i = 0; i < at.length; i++) {
            order[i] = at[i] << 32 | i;
        }
        Arrays.sort(order);
        DataType t = target.dataType();
        if (!repeatsARow(order) || t != updates.dataType() || t != DataType.FLOAT && t != DataType.DOUBLE
                || !isDense(target)) {
            scatterAdd(target, ids.reshape(ids.length()), updates.reshape(ids.length(), target.size(1)));
        } else {
            addRowsInOrder(target, order, isDense(updates) ? updates : updates.dup('c'));
        }
    }

    private static boolean repeatsARow(long[] order) {
        for (int k = 1; k < order.length; k++) {
            if (order[k] >>> 32 == order[k - 1] >>> 32) {
                return true;
            }
        }
        return false;
    }

    /**
     * {@code target[row] += updates[i]} for the {@code (row, i)} pairs of {@code order} (sorted), repeated rows summed
     * in the order of {@code i}, each target row by one thread: ND4J's scatter adds a repeated row's updates from
     * several threads in whatever order they run, so two runs of the same step differed in the last bits (the token
     * embedding's gradient).
     */
    private void addRowsInOrder(INDArray target, long[] order, INDArray updates) {
        int cols = (int) target.size(1);
        boolean single = target.dataType() == DataType.FLOAT;
        float[] fAcc = single ? new float[cols] : null;
        float[] fRow = single ? new float[cols] : null;
        double[] dAcc = single ? null : new double[cols];
        double[] dRow = single ? null : new double[cols];
        for (int k = 0; k < order.length; ) {
            long row = order[k] >>> 32;
            read(target, row * cols, fAcc, dAcc, cols);
            for (; k < order.length && order[k] >>> 32 == row; k++) {
                read(updates, (order[k] & 0xffffffffL) * cols, fRow, dRow, cols);
                for (int j = 0; j < cols; j++) {
                    if (single) {
                        fAcc[j] += fRow[j];
                    } else {
                        dAcc[j] += dRow[j];
                    }
                }
            }
            if (single) {
                copyBlock(target, row * cols, fAcc, cols, true);
            } else {
                copyBlock(target, row * cols, dAcc, cols, true);
            }
        }
    }

    private void read(INDArray a, long from, float[] f, double[] d, int len) {
        if (f != null) {
            copyBlock(a, from, f, len, false);
        } else {
            copyBlock(a, from, d, len, false);
        }
    }

    @Override
    public INDArray[] crossEntropy(INDArray logits, INDArray targets, long ignoreIndex, boolean needGrad,
                                   double gradScale) {
        int n = (int) logits.size(0);
        long v = logits.size(1);
        long[] t = targets.reshape(targets.length()).toLongVector();
        long[] rows = validRows(t, ignoreIndex);
        long[] flatIdx = flatTargets(rows, t, v);
        // the softmax overwrites the logits when the gradient is wanted (it becomes the gradient)
        INDArray p = needGrad ? logits : Nd4j.createUninitialized(logits.dataType(), logits.shape());
        double loss = argmaxLoss(logits, p, rows, flatIdx, n, v);
        if (needGrad) {
            subtractOneHot(p, flatIdx, n, v);
            // every counted row's gradient is (softmax − one-hot) · gradScale / valid, in that order (as PyTorch);
            // ignored rows' are zero
            double rowScale = rows.length > 0 ? gradScale / rows.length : 0;
            double[] scale = new double[n];
            for (long r : rows) {
                scale[(int) r] = rowScale;
            }
            p.muliColumnVector(Nd4j.createFromArray(scale).castTo(logits.dataType()).reshape(n, 1));
        }
        return new INDArray[] {Nd4j.scalar(logits.dataType(), loss), needGrad ? p : null};
    }

    /** The flat index {@code row · V + target} of every counted row. */
    static long[] flatTargets(long[] rows, long[] t, long v) {
        long[] flatIdx = new long[rows.length];
        for (int j = 0; j < rows.length; j++) {
            flatIdx[j] = rows[j] * v + t[(int) rows[j]];
        }
        return flatIdx;
    }

    /** {@code p[flatIdx] −= 1}: the softmax less the one-hot targets. */
    static void subtractOneHot(INDArray p, long[] flatIdx, int n, long v) {
        if (flatIdx.length > 0) {
            scatterAdd(p.reshape(n * v), Nd4j.createFromArray(flatIdx),
                    Nd4j.valueArrayOf(new long[] {flatIdx.length}, -1.0, p.dataType()));
        }
    }

    /** Zeroes the rows of {@code x} whose target is {@code ignoreIndex} (runs of them at once). */
    static void zeroRows(INDArray x, long[] t, long ignoreIndex) {
        for (int i = 0; i < t.length; ) {
            if (t[i] != ignoreIndex) {
                i++;
                continue;
            }
            int j = i;
            while (j < t.length && t[j] == ignoreIndex) {
                j++;
            }
            x.get(interval(i, j), all()).assign(0);
            i = j;
        }
    }

    /**
     * libnd4j's softmax into {@code p}: loss_i = lse_i − x[t_i], with lse_i = max_i − log p[argmax_i] read off
     * the softmax (p at the argmax is ≥ 1/V, so this is exact where p[t_i] itself would underflow in fp32).
     */
    private static double argmaxLoss(INDArray logits, INDArray p, long[] rows, long[] flatIdx, int n, long v) {
        int valid = rows.length;
        INDArray flatLogits = logits.reshape(n * v);
        INDArray am = Nd4j.exec(DynamicCustomOp.builder("argmax").addInputs(logits).addIntegerArguments(1).build())[0]
                .castTo(DataType.INT64);
        long[] amIdx = am.toLongVector();
        for (int i = 0; i < n; i++) {
            amIdx[i] += i * v;
        }
        INDArray amFlat = Nd4j.createFromArray(amIdx);
        double[] max = gathered(flatLogits, amFlat);
        double[] xt = valid > 0 ? gathered(flatLogits, Nd4j.createFromArray(flatIdx)) : new double[0];
        Nd4j.exec(new SoftMax(logits, p, 1));
        double[] pmax = gathered(p.reshape(n * v), amFlat);
        if (valid == 0) {
            return Double.NaN;
        }
        double sum = 0;
        for (int j = 0; j < valid; j++) {
            int r = (int) rows[j];
            sum += max[r] - Math.log(pmax[r]) - xt[j];
        }
        return sum / valid;
    }

    static double[] gathered(INDArray flat, INDArray idx) {
        INDArray out = Nd4j.createUninitialized(flat.dataType(), idx.length());
        gather(flat, idx, out);
        return out.toDoubleVector();
    }

    static long[] validRows(long[] t, long ignoreIndex) {
        int valid = 0;
        for (long x : t) {
            if (x != ignoreIndex) {
                valid++;
            }
        }
        long[] rows = new long[valid];
        for (int i = 0, j = 0; i < t.length; i++) {
            if (t[i] != ignoreIndex) {
                rows[j++] = i;
            }
        }
        return rows;
    }


    /** {@code out = source[idx]} along dimension 0. */
    private static void gather(INDArray source, INDArray idx, INDArray out) {
        Nd4j.exec(DynamicCustomOp.builder("gather").addInputs(source, idx).addOutputs(out).addIntegerArguments(0).build());
    }

    /** {@code target[idx[i]] += updates[i]} along dimension 0, in place. */
    private static void scatterAdd(INDArray target, INDArray idx, INDArray updates) {
        Nd4j.exec(DynamicCustomOp.builder("scatter_add").addInputs(target, idx, updates).addOutputs(target).build());
    }

    /** Whether {@code x} has C-ordered strides with no gaps (any offset): what the oneDNN row-wise kernels take. */
    static boolean isDense(INDArray x) {
        long s = 1;
        for (int i = x.rank() - 1; i >= 0; i--) {
            if (x.size(i) != 1 && x.stride(i) != s) {
                return false;
            }
            s *= x.size(i);
        }
        return true;
    }

    // host memory is where ND4J's CPU backend keeps every array: blocks are copied through its address

    @Override
    public void copyBlock(INDArray a, long from, float[] block, int len, boolean write) {
        FloatPointer at = new FloatPointer(a.data().addressPointer()).position(a.offset() + from);
        if (write) {
            at.put(block, 0, len);
        } else {
            at.get(block, 0, len);
        }
    }

    @Override
    public void copyBlock(INDArray a, long from, double[] block, int len, boolean write) {
        DoublePointer at = new DoublePointer(a.data().addressPointer()).position(a.offset() + from);
        if (write) {
            at.put(block, 0, len);
        } else {
            at.get(block, 0, len);
        }
    }
}
