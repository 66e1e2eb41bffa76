package dev.collie.core.tensor;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The narrow seam between layers and the heavy math (DESIGN.md §3). Layers call these and nothing
 * backend-specific, so a second implementation (e.g. cuBLAS plus runtime-compiled kernels for GPUs
 * that ND4J's CUDA build cannot drive) plugs in without touching a layer.
 * Arrays are row-major; "rows" means every dimension but the last.
 */
public interface Kernels {
    /** The implementation in use. */
    static Kernels get() {
        return Nd4jKernels.INSTANCE;
    }

    /** {@code op(a) · op(b)} for rank-2 arrays, or batched over leading dimensions for rank 3 and 4. */
    INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB);

    /** Softmax over the last dimension, into a new array. */
    INDArray softmax(INDArray x);

    /** Gradient of the softmax input given its output {@code p} and output gradient {@code dp}. */
    INDArray softmaxBackward(INDArray p, INDArray dp);

    /** RMSNorm of rows: returns {@code {y, xhat, rstd}} with {@code y = xhat * weight}, {@code xhat = x * rstd}. */
    INDArray[] rmsNorm(INDArray x, INDArray weight, double eps);

    /** RMSNorm backward: returns {@code {dx, dweight}}; {@code dweight} is null when {@code needWeightGrad} is false. */
    INDArray[] rmsNormBackward(INDArray dy, INDArray xhat, INDArray rstd, INDArray weight, boolean needWeightGrad);

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
     * {@code dlogits} is the gradient of the mean loss, or null when {@code needGrad} is false.
     * With no counted row the loss is NaN (as PyTorch) and the gradient zero. When {@code needGrad} is
     * true the logits array is overwritten (it becomes the gradient), saving a logits-sized buffer.
     */
    INDArray[] crossEntropy(INDArray logits, INDArray targets, long ignoreIndex, boolean needGrad);
}
