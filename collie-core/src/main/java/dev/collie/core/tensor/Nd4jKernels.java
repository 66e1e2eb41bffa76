package dev.collie.core.tensor;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/** {@link Kernels} on ND4J ops (the CPU backend, and ND4J's CUDA backend where its binaries run). */
final class Nd4jKernels implements Kernels {
    static final Nd4jKernels INSTANCE = new Nd4jKernels();

    private Nd4jKernels() {
    }

    @Override
    public INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB) {
        return Nd4j.matmul(a, b, null, transA, transB, false);
    }

    @Override
    public INDArray softmax(INDArray x) {
        INDArray out = Nd4j.createUninitialized(x.dataType(), x.shape());
        Nd4j.exec(new SoftMax(x, out, x.rank() - 1));
        return out;
    }

    @Override
    public INDArray softmaxBackward(INDArray p, INDArray dp) {
        INDArray pdp = p.mul(dp);
        INDArray rowSum = pdp.sum(true, p.rank() - 1);
        // dS = p * dp - p * sum(p * dp)
        return pdp.subi(p.mul(rowSum));
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
        // one stable softmax pass; -log p[target] is the loss, p - onehot the gradient
        INDArray p = softmax(logits);
        double loss = Double.NaN;
        if (valid > 0) {
            INDArray idx = Nd4j.createFromArray(flatIdx);
            INDArray picked = Nd4j.createUninitialized(logits.dataType(), valid);
            gather(p.reshape(n * v), idx, picked);
            double[] pt = picked.toDoubleVector();
            double sum = 0;
            for (int j = 0; j < valid; j++) {
                // where p underflows (a logit gap beyond ~87 in fp32) take the exact row log-sum-exp instead
                sum += pt[j] > 1e-30 ? -Math.log(pt[j]) : exactNll(logits.getRow(rows[j]), t[(int) rows[j]]);
            }
            loss = sum / valid;
        }
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

    /** {@code logsumexp(row) - row[target]} in double precision. */
    private static double exactNll(INDArray row, long target) {
        double[] x = row.toDoubleVector();
        double max = Double.NEGATIVE_INFINITY;
        for (double d : x) {
            max = Math.max(max, d);
        }
        double sum = 0;
        for (double d : x) {
            sum += Math.exp(d - max);
        }
        return max + Math.log(sum) - x[(int) target];
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
