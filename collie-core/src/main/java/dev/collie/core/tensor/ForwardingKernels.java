package dev.collie.core.tensor;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@link Kernels} that hand every call to other kernels: extend it and override what differs (oneDNN's products and
 * fused ops over ND4J's, small arrays in Java over either), so that a kernel added to the interface reaches the
 * wrapped one without editing every implementation.
 */
abstract class ForwardingKernels implements Kernels {
    private final Kernels wrapped;

    ForwardingKernels(Kernels wrapped) {
        this.wrapped = wrapped;
    }

    @Override
    public INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB) {
        return wrapped.matmul(a, b, transA, transB);
    }

    @Override
    public INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB, INDArray out) {
        return wrapped.matmul(a, b, transA, transB, out);
    }

    @Override
    public INDArray rotary(INDArray x, INDArray cos, INDArray sin, int heads, RotaryPairs pairs, boolean inverse) {
        return wrapped.rotary(x, cos, sin, heads, pairs, inverse);
    }

    @Override
    public void scaleSubtract(INDArray x, double c, INDArray y) {
        wrapped.scaleSubtract(x, c, y);
    }

    @Override
    public void adamW(INDArray param, INDArray grad, INDArray m, INDArray v, AdamWStep step) {
        wrapped.adamW(param, grad, m, v, step);
    }

    @Override
    public void lion(INDArray param, INDArray grad, INDArray m, double lr, double beta1, double beta2,
                     double weightDecay) {
        wrapped.lion(param, grad, m, lr, beta1, beta2, weightDecay);
    }

    @Override
    public void adan(INDArray param, INDArray grad, INDArray m, INDArray v, INDArray n, INDArray negPre, AdanStep step) {
        wrapped.adan(param, grad, m, v, n, negPre, step);
    }

    @Override
    public void sophiaG(INDArray param, INDArray grad, INDArray m, INDArray h, double lr, double beta1, double rhoBs,
                        double weightDecay) {
        wrapped.sophiaG(param, grad, m, h, lr, beta1, rhoBs, weightDecay);
    }

    @Override
    public INDArray softmax(INDArray x) {
        return wrapped.softmax(x);
    }

    @Override
    public INDArray causalSoftmaxInPlace(INDArray scores, int t, int window) {
        return wrapped.causalSoftmaxInPlace(scores, t, window);
    }

    @Override
    public INDArray softmaxBackward(INDArray p, INDArray dp) {
        return wrapped.softmaxBackward(p, dp);
    }

    @Override
    public INDArray[] rmsNorm(INDArray x, INDArray weight, double eps) {
        return wrapped.rmsNorm(x, weight, eps);
    }

    @Override
    public INDArray[] rmsNormBackward(INDArray dy, INDArray xhat, INDArray rstd, INDArray weight,
                                      boolean needWeightGrad) {
        return wrapped.rmsNormBackward(dy, xhat, rstd, weight, needWeightGrad);
    }

    @Override
    public INDArray[] layerNorm(INDArray x, INDArray weight, INDArray bias, double eps) {
        return wrapped.layerNorm(x, weight, bias, eps);
    }

    @Override
    public INDArray[] layerNormBackward(INDArray dy, INDArray xhat, INDArray rstd, INDArray weight,
                                        boolean needParamGrads) {
        return wrapped.layerNormBackward(dy, xhat, rstd, weight, needParamGrads);
    }

    @Override
    public INDArray geluTanh(INDArray x) {
        return wrapped.geluTanh(x);
    }

    @Override
    public INDArray geluTanhBackward(INDArray dy, INDArray x) {
        return wrapped.geluTanhBackward(dy, x);
    }

    @Override
    public INDArray siluMul(INDArray a, INDArray b) {
        return wrapped.siluMul(a, b);
    }

    @Override
    public INDArray[] siluMulBackward(INDArray dy, INDArray a, INDArray b) {
        return wrapped.siluMulBackward(dy, a, b);
    }

    @Override
    public INDArray gatherRows(INDArray table, INDArray ids) {
        return wrapped.gatherRows(table, ids);
    }

    @Override
    public void scatterAddRows(INDArray target, INDArray ids, INDArray updates) {
        wrapped.scatterAddRows(target, ids, updates);
    }

    @Override
    public INDArray[] crossEntropy(INDArray logits, INDArray targets, long ignoreIndex, boolean needGrad,
                                   double gradScale) {
        return wrapped.crossEntropy(logits, targets, ignoreIndex, needGrad, gradScale);
    }

    @Override
    public void copyBlock(INDArray a, long from, float[] block, int len, boolean write) {
        wrapped.copyBlock(a, from, block, len, write);
    }

    @Override
    public void copyBlock(INDArray a, long from, double[] block, int len, boolean write) {
        wrapped.copyBlock(a, from, block, len, write);
    }
}
