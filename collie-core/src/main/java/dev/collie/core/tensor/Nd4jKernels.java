package dev.collie.core.tensor;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * {@link Kernels} on ND4J ops (the CPU backend, and ND4J's CUDA backend where its binaries run), with
 * oneDNN 3.3 ({@link Dnnl}) taking fp32 batched products, softmax, cross-entropy and SiLU, and every product
 * under {@link MatmulPrecision#BF16}, where it is on the class path.
 */
final class Nd4jKernels implements Kernels {
    static final Nd4jKernels INSTANCE = new Nd4jKernels();

    private Nd4jKernels() {
    }

    @Override
    public INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB) {
        // the Mmul custom op is the path that reaches oneDNN's GEMM (INDArray.mmul and Nd4j.matmul go to
        // OpenBLAS through the Java BLAS wrapper, 2-3x slower here; see docs/design-notes.md)
        int r = a.rank();
        long[] shape = a.shape().clone();
        shape[r - 2] = transA ? a.size(r - 1) : a.size(r - 2);
        shape[r - 1] = transB ? b.size(r - 2) : b.size(r - 1);
        INDArray out = Nd4j.createUninitialized(a.dataType(), shape);
        boolean bf16 = Backends.matmulPrecision() == MatmulPrecision.BF16;
        // oneDNN 3.3 where it is on the class path: every bf16 product, and fp32 batched products (ND4J sends
        // those to its own loop at about half the speed of its rank-2 GEMM); fp32 rank-2 products stay on
        // ND4J's oneDNN path, which is as fast
        if (a.dataType() == DataType.FLOAT && (bf16 || (r > 2 && Backends.dnnlAvailable()))) {
            if (a.isEmpty() || b.isEmpty()) {
                return out.assign(0); // an empty sum (or an empty result): oneDNN wants every size above zero
            }
            Dnnl.matmul(a, b, transA, transB, out, bf16);
            return out;
        }
        Nd4j.exec(new Mmul(a, b, out, MMulTranspose.builder().transposeA(transA).transposeB(transB).build()));
        return out;
    }

    @Override
    public INDArray softmax(INDArray x) {
        INDArray out = Nd4j.createUninitialized(x.dataType(), x.shape());
        if (onDnnl(x)) {
            Dnnl.softmax(x, out); // vectorised exp; libnd4j's softmax calls scalar expf per element
        } else {
            Nd4j.exec(new SoftMax(x, out, x.rank() - 1));
        }
        return out;
    }

    /** Whether oneDNN 3.3's row-wise kernels take {@code x}: fp32, dense C order, and oneDNN present. */
    private static boolean onDnnl(INDArray x) {
        return x.dataType() == DataType.FLOAT && Backends.dnnlAvailable() && Dnnl.isDense(x);
    }

    @Override
    public INDArray softmaxBackward(INDArray p, INDArray dp) {
        if (onDnnl(p) && onDnnl(dp)) {
            INDArray dx = Nd4j.createUninitialized(p.dataType(), p.shape());
            Dnnl.softmaxBackward(p, dp, dx);
            return dx;
        }
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
    public INDArray siluMul(INDArray a, INDArray b) {
        if (onDnnl(a)) {
            INDArray out = Nd4j.createUninitialized(a.dataType(), a.shape());
            Dnnl.silu(a, out);
            return out.muli(b);
        }
        INDArray sig = Transforms.sigmoid(a, true);
        return sig.muli(a).muli(b);
    }

    @Override
    public INDArray[] siluMulBackward(INDArray dy, INDArray a, INDArray b) {
        if (onDnnl(a) && onDnnl(dy)) {
            INDArray silu = Nd4j.createUninitialized(a.dataType(), a.shape());
            Dnnl.silu(a, silu);
            INDArray da = dy.mul(b);
            Dnnl.siluBackward(a, da, da);
            return new INDArray[] {da, silu.muli(dy)};
        }
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
        scatterAdd(target, ids.reshape(ids.length()), updates.reshape(ids.length(), target.size(1)));
    }

    @Override
    public INDArray[] crossEntropy(INDArray logits, INDArray targets, long ignoreIndex, boolean needGrad) {
        int n = (int) logits.size(0);
        long v = logits.size(1);
        long[] t = targets.reshape(targets.length()).toLongVector();
        long[] rows = validRows(t, ignoreIndex);
        int valid = rows.length;
        long[] flatIdx = new long[valid];
        for (int j = 0; j < valid; j++) {
            flatIdx[j] = rows[j] * v + t[(int) rows[j]];
        }
        // the softmax overwrites the logits when the gradient is wanted (it becomes the gradient)
        INDArray p = needGrad ? logits : Nd4j.createUninitialized(logits.dataType(), logits.shape());
        double loss = onDnnl(logits) ? logSoftmaxLoss(logits, p, flatIdx, valid, n, v, needGrad)
                : argmaxLoss(logits, p, rows, flatIdx, n, v);
        INDArray grad = null;
        if (needGrad) {
            grad = p;
            double[] rowScale = new double[n];
            for (long r : rows) {
                rowScale[(int) r] = 1.0 / valid;
            }
            if (valid > 0) {
                INDArray flat = grad.reshape(n * v);
                scatterAdd(flat, Nd4j.createFromArray(flatIdx), Nd4j.valueArrayOf(new long[] {valid}, -1.0, logits.dataType()));
            }
            grad.muliColumnVector(Nd4j.createFromArray(rowScale).castTo(logits.dataType()).reshape(n, 1));
        }
        return new INDArray[] {Nd4j.scalar(logits.dataType(), loss), grad};
    }

    /**
     * oneDNN's log-softmax into {@code p} (one vectorised kernel): loss_i = −log p[t_i]; then, when the gradient
     * is wanted, its exp in place makes {@code p} the softmax.
     */
    private static double logSoftmaxLoss(INDArray logits, INDArray p, long[] flatIdx, int valid, int n, long v,
                                         boolean softmax) {
        Dnnl.logSoftmax(logits, p);
        double loss = Double.NaN;
        if (valid > 0) {
            double sum = 0;
            for (double lp : gathered(p.reshape(n * v), Nd4j.createFromArray(flatIdx))) {
                sum -= lp;
            }
            loss = sum / valid;
        }
        if (softmax) {
            Dnnl.exp(p, p);
        }
        return loss;
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

    private static double[] gathered(INDArray flat, INDArray idx) {
        INDArray out = Nd4j.createUninitialized(flat.dataType(), idx.length());
        gather(flat, idx, out);
        return out.toDoubleVector();
    }

    private static long[] validRows(long[] t, long ignoreIndex) {
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
}
