package dev.collie.core.tensor;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@link Kernels} with oneDNN 3.3 ({@link Dnnl}) where it is faster than ND4J on fp32 arrays in dense C order:
 * every product under {@link MatmulPrecision#BF16}, fp32 batched products, rotary, the optimizers' scaled subtract,
 * softmax and its backward, SiLU·b and its backward, the cross-entropy. Everything else (float64, views with gaps,
 * rank-2 fp32 products, RMSNorm, LayerNorm, GELU, gathers) goes to {@link Nd4jKernels}. Chosen by {@link Kernels#get()} when oneDNN
 * 3.3 loads and is not switched off.
 */
final class DnnlKernels extends ForwardingKernels {
    static final DnnlKernels INSTANCE = new DnnlKernels();
    private static final Nd4jKernels ND4J = Nd4jKernels.INSTANCE;

    private DnnlKernels() {
        super(Nd4jKernels.INSTANCE);   // not ND4J: INSTANCE is built before that field is set
    }

    /** Whether oneDNN's kernels take {@code x}: fp32 in dense C order. */
    private static boolean fits(INDArray x) {
        return x.dataType() == DataType.FLOAT && Nd4jKernels.isDense(x);
    }

    @Override
    public INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB) {
        return matmul(a, b, transA, transB, null);
    }

    @Override
    public INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB, INDArray into) {
        boolean bf16 = Backends.matmulPrecision() == MatmulPrecision.BF16;
        // every bf16 product, and fp32 batched products (ND4J sends those to its own loop at about half the speed of
        // its rank-2 GEMM); fp32 rank-2 products stay on ND4J's oneDNN path, which is as fast. oneDNN reads and
        // writes views of any strides in place.
        if (a.dataType() != DataType.FLOAT || !(bf16 || a.rank() > 2)) {
            return ND4J.matmul(a, b, transA, transB, into);
        }
        INDArray out = Nd4jKernels.productOut(a, b, transA, transB, into);
        if (a.isEmpty() || b.isEmpty()) {
            return out.assign(0); // an empty sum (or an empty result): oneDNN wants every size above zero
        }
        Dnnl.matmul(a, b, transA, transB, out, bf16);
        return out;
    }

    @Override
    public INDArray rotary(INDArray x, INDArray cos, INDArray sin, int heads, RotaryPairs pairs, boolean inverse) {
        INDArray rows = Nd4jKernels.rotaryRows(x, cos, sin, heads);
        if (!fits(rows) || !fits(cos) || !fits(sin)) {
            return ND4J.rotary(x, cos, sin, heads, pairs, inverse);
        }
        long n = x.size(0);
        long d = x.size(1) / heads;
        INDArray out = Nd4j.createUninitialized(x.dataType(), n, x.size(1));
        // out = x ⊙ cos, then out += (x·P) ⊙ sin with P the signed swap within each pair, one exact fp32
        // product per head row (a ±1 and zeros per column) fused with the multiply-add: no gather, two passes
        Dnnl.multiply(rows, cos, out, 0f);
        Dnnl.matmulMulAdd(rows.reshape('c', n * heads, d), swapMatrix(d, pairs, inverse), sin.reshape('c', n * heads, d),
                out.reshape('c', n * heads, d));
        return out;
    }

    private static final Map<List<Object>, INDArray> SWAPS = new ConcurrentHashMap<>();

    /** {@code [d, d]} fp32: row·P = {@code −b} at each pair's first dimension a and {@code a} at b (negated for the inverse). */
    private static INDArray swapMatrix(long d, RotaryPairs pairs, boolean inverse) {
        return SWAPS.computeIfAbsent(List.of(d, pairs, inverse), key -> {
            int n = (int) d;
            float[] p = new float[n * n];
            float sign = inverse ? -1f : 1f;
            for (int i = 0; i < n / 2; i++) {
                int a = pairs.first(i, n);
                int b = pairs.second(i, n);
                p[b * n + a] = -sign;   // out[a] = −x[b]
                p[a * n + b] = sign;    // out[b] = x[a]
            }
            try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                return Nd4j.create(p, new long[] {n, n}, 'c');
            }
        });
    }

    @Override
    public void scaleSubtract(INDArray x, double c, INDArray y) {
        if (fits(x) && fits(y) && Arrays.equals(x.shape(), y.shape()) && c != 1) {
            Dnnl.scaledSubtract(x, (float) c, y, x);
        } else {
            ND4J.scaleSubtract(x, c, y);
        }
    }

    @Override
    public INDArray softmax(INDArray x) {
        if (!fits(x)) {
            return ND4J.softmax(x);
        }
        INDArray out = Nd4j.createUninitialized(x.dataType(), x.shape());
        Dnnl.softmax(x, out); // vectorised exp; libnd4j's softmax calls scalar expf per element
        return out;
    }

    @Override
    public INDArray causalSoftmaxInPlace(INDArray scores, int t, int window) {
        if (!fits(scores)) {
            return ND4J.causalSoftmaxInPlace(scores, t, window);
        }
        CausalMask.addTo(scores, t, window);
        Dnnl.softmax(scores, scores);
        return scores;
    }

    @Override
    public INDArray softmaxBackward(INDArray p, INDArray dp) {
        if (!fits(p) || !fits(dp)) {
            return ND4J.softmaxBackward(p, dp);
        }
        INDArray dx = Nd4j.createUninitialized(p.dataType(), p.shape());
        Dnnl.softmaxBackward(p, dp, dx);
        return dx;
    }

    @Override
    public INDArray siluMul(INDArray a, INDArray b) {
        if (!fits(a)) {
            return ND4J.siluMul(a, b);
        }
        INDArray out = Nd4j.createUninitialized(a.dataType(), a.shape());
        Dnnl.silu(a, out);
        return out.muli(b);
    }

    @Override
    public INDArray[] siluMulBackward(INDArray dy, INDArray a, INDArray b) {
        if (!fits(a) || !fits(dy)) {
            return ND4J.siluMulBackward(dy, a, b);
        }
        INDArray silu = Nd4j.createUninitialized(a.dataType(), a.shape());
        Dnnl.silu(a, silu);
        INDArray da = dy.mul(b);
        Dnnl.siluBackward(a, da, da);
        return new INDArray[] {da, silu.muli(dy)};
    }

    /**
     * One log-softmax kernel (loss = −log p[target], exact where p[target] underflows), then an exp in place turns it
     * into the softmax, which becomes the gradient: no argmax pass, no gathers of the maxima.
     */
    @Override
    public INDArray[] crossEntropy(INDArray logits, INDArray targets, long ignoreIndex, boolean needGrad,
                                   double gradScale) {
        if (!fits(logits)) {
            return ND4J.crossEntropy(logits, targets, ignoreIndex, needGrad, gradScale);
        }
        int n = (int) logits.size(0);
        long v = logits.size(1);
        long[] t = targets.reshape(targets.length()).toLongVector();
        long[] rows = Nd4jKernels.validRows(t, ignoreIndex);
        long[] flatIdx = Nd4jKernels.flatTargets(rows, t, v);
        // the log-softmax overwrites the logits when the gradient is wanted (it becomes the gradient)
        INDArray p = needGrad ? logits : Nd4j.createUninitialized(logits.dataType(), logits.shape());
        Dnnl.logSoftmax(logits, p);
        double loss = Double.NaN;
        if (rows.length > 0) {
            double sum = 0;
            for (double lp : Nd4jKernels.gathered(p.reshape(n * v), Nd4j.createFromArray(flatIdx))) {
                sum -= lp;
            }
            loss = sum / rows.length;
        }
        if (needGrad) {
            Dnnl.exp(p, p);   // the softmax
            Nd4jKernels.subtractOneHot(p, flatIdx, n, v);
            // (softmax − one-hot) · gradScale / valid, in that order (as PyTorch); ignored rows zero
            double rowScale = rows.length > 0 ? gradScale / rows.length : 0;
            if (rowScale != 1) {
                p.muli(rowScale);
            }
            Nd4jKernels.zeroRows(p, t, ignoreIndex);
        }
        return new INDArray[] {Nd4j.scalar(logits.dataType(), loss), needGrad ? p : null};
    }
}
