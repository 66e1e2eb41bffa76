package dev.collie.core.tensor;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The narrow seam between layers and the heavy math (DESIGN.md §3). Layers call these and nothing
 * backend-specific, so a second implementation (e.g. cuBLAS plus runtime-compiled kernels for GPUs
 * that ND4J's CUDA build cannot drive) plugs in without touching a layer.
 * Arrays are row-major; "rows" means every dimension but the last.
 */
public interface Kernels {
    /**
     * The implementation in use: oneDNN 3.3's ({@code DnnlKernels}, over ND4J's for what it does not take) where it
     * loads and is not switched off, else ND4J's alone.
     */
    static Kernels get() {
        return Backends.kernels();
    }

    /** {@code op(a) · op(b)} for rank-2 arrays, or batched over leading dimensions for rank 3 and 4. */
    INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB);

    /**
     * {@link #matmul(INDArray, INDArray, boolean, boolean)} written into {@code out} (the product's shape and type,
     * any strides: a view of a larger array is written in place), which it returns; with {@code out} null, into a
     * new array.
     */
    INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB, INDArray out);

    /**
     * Rotary position embedding of rows {@code x} {@code [n, heads·d]}, its dimensions paired as {@code pairs} says:
     * per head, each pair {@code (a, b)} becomes {@code (a·cos − b·sin, b·cos + a·sin)}, with {@code cos, sin}
     * {@code [n, heads·d]} holding each dimension's value (the same for both of a pair; cos 1 and sin 0 leave a
     * dimension as it is). With {@code inverse} the transposed rotation ({@code sin} negated), which is the
     * gradient. Into a new array.
     */
    INDArray rotary(INDArray x, INDArray cos, INDArray sin, int heads, RotaryPairs pairs, boolean inverse);

    /**
     * {@code x = c·x − y} in place ({@code x}, {@code y} of one shape): an optimizer's decoupled weight decay and
     * update in one pass, each product rounded as {@code x.muli(c).subi(y)} rounds it.
     */
    void scaleSubtract(INDArray x, double c, INDArray y);

    /**
     * One AdamW step in place, PyTorch's rule ({@code torch.optim.AdamW}) over arrays of one shape:
     * {@code m ← β1·m + (1−β1)·g}, {@code v ← β2·v + (1−β2)·g²},
     * {@code θ ← θ·(1 − lr·wd) − lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)}. The gradient is spent: what it holds
     * afterwards is unspecified.
     */
    void adamW(INDArray param, INDArray grad, INDArray m, INDArray v, AdamWStep step);

    /** The hyperparameters of one {@link #adamW} call; {@code step} counts from 1. */
    record AdamWStep(double lr, double beta1, double beta2, double eps, double weightDecay, long step) {
    }

    /**
     * One Lion step in place (CoLLiE's rule): {@code θ ← θ(1 − lr·wd)}, {@code θ ← θ − lr·sign(β1·m + (1−β1)·g)},
     * {@code m ← β2·m + (1−β2)·g}.
     */
    void lion(INDArray param, INDArray grad, INDArray m, double lr, double beta1, double beta2, double weightDecay);

    /**
     * One Adan step in place (CoLLiE's rule, collie-optim's {@code Adan}) over the parameter, its gradient and the
     * state {@code m}, {@code v}, {@code n} and {@code negPre} (the previous gradient, negated; overwritten with
     * {@code −grad}). The gradient is spent: what it holds afterwards is unspecified.
     */
    void adan(INDArray param, INDArray grad, INDArray m, INDArray v, INDArray n, INDArray negPre, AdanStep step);

    /** The hyperparameters of one {@link #adan} call; {@code step} counts from 1. */
    record AdanStep(double lr, double beta1, double beta2, double beta3, double eps, double weightDecay,
                    boolean noProx, long step) {
    }

    /**
     * One SophiaG step in place (collie-optim's {@code SophiaG}): {@code θ ← θ(1 − lr·wd)},
     * {@code m ← β1·m + (1−β1)·g}, {@code θ ← θ − lr·sign(m)·min(|m| / (rhoBs·h + 1e-15), 1)}. The gradient is spent.
     */
    void sophiaG(INDArray param, INDArray grad, INDArray m, INDArray h, double lr, double beta1, double rhoBs,
                 double weightDecay);

    /** Softmax over the last dimension, into a new array. */
    INDArray softmax(INDArray x);

    /**
     * Softmax over the last dimension of attention scores, in place: row r is query {@code r mod t} of a block of
     * {@code t} queries over the last dimension's {@code tk ≥ t} keys, and the keys it cannot see ({@link CausalMask})
     * get probability 0, as adding the mask first would give. Returns {@code scores}, now the probabilities.
     */
    INDArray causalSoftmaxInPlace(INDArray scores, int t, int window);

    /** Gradient of the softmax input given its output {@code p} and output gradient {@code dp}. */
    INDArray softmaxBackward(INDArray p, INDArray dp);

    /** RMSNorm of rows: returns {@code {y, xhat, rstd}} with {@code y = xhat * weight}, {@code xhat = x * rstd}. */
    INDArray[] rmsNorm(INDArray x, INDArray weight, double eps);

    /** RMSNorm backward: returns {@code {dx, dweight}}; {@code dweight} is null when {@code needWeightGrad} is false. */
    INDArray[] rmsNormBackward(INDArray dy, INDArray xhat, INDArray rstd, INDArray weight, boolean needWeightGrad);

    /**
     * LayerNorm of rows: returns {@code {y, xhat, rstd}} with {@code y = xhat * weight + bias},
     * {@code xhat = (x − mean) * rstd}, {@code rstd = 1 / sqrt(var + eps)} (the biased variance, as PyTorch's).
     */
    INDArray[] layerNorm(INDArray x, INDArray weight, INDArray bias, double eps);

    /**
     * LayerNorm backward: returns {@code {dx, dweight, dbias}}; {@code dweight} and {@code dbias} are null when
     * {@code needParamGrads} is false.
     */
    INDArray[] layerNormBackward(INDArray dy, INDArray xhat, INDArray rstd, INDArray weight, boolean needParamGrads);

    /**
     * GELU in its tanh approximation (transformers' {@code gelu_new}, PyTorch's {@code approximate="tanh"}):
     * {@code 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))}, into a new array.
     */
    INDArray geluTanh(INDArray x);

    /** Backward of {@link #geluTanh}: {@code dy · gelu'(x)}, into a new array. */
    INDArray geluTanhBackward(INDArray dy, INDArray x);

    /** {@code silu(a) * b}. */
    INDArray siluMul(INDArray a, INDArray b);

    /** Backward of {@link #siluMul}: returns {@code {da, db}}. */
    INDArray[] siluMulBackward(INDArray dy, INDArray a, INDArray b);

    /** Rows of {@code table} ({@code [V, D]}) at {@code ids} (integer, any shape, n elements): {@code [n, D]}. */
    INDArray gatherRows(INDArray table, INDArray ids);

    /** {@code target[ids[i]] += updates[i]} for every row i, duplicates summed. */
    void scatterAddRows(INDArray target, INDArray ids, INDArray updates);

    /**
     * Mean cross-entropy of rows of {@code logits} ({@code [n, V]}) against {@code targets} ({@code [n]},
     * integer; {@code ignoreIndex} rows excluded). Returns {@code {loss (scalar), dlogits}} where
     * {@code dlogits} is the gradient of the mean loss times {@code gradScale}, or null when {@code needGrad} is
     * false. With no counted row the loss is NaN (as PyTorch) and the gradient zero. When {@code needGrad} is
     * true the logits array is overwritten (it becomes the gradient), saving a logits-sized buffer.
     */
    INDArray[] crossEntropy(INDArray logits, INDArray targets, long ignoreIndex, boolean needGrad, double gradScale);

    /**
     * Copies elements {@code [from, from + len)} of {@code a} (FLOAT, its elements one c-ordered run) into
     * {@code block[0, len)}, or with {@code write} from {@code block} into {@code a}: the optimizers' blocked loops
     * (AdaLomo's factored moments, exact float64 norms) go over parameter-sized arrays a block at a time this way,
     * without an ND4J op or a temporary array.
     */
    void copyBlock(INDArray a, long from, float[] block, int len, boolean write);

    /** As {@link #copyBlock(INDArray, long, float[], int, boolean)} for a DOUBLE array. */
    void copyBlock(INDArray a, long from, double[] block, int len, boolean write);
}
