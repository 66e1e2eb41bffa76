package dev.collie.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A module with one input and one output. {@code forward} saves what {@code backward} needs on the tape;
 * {@code backward} takes the gradient of the output, delivers parameter gradients through
 * {@link Parameter#accumulateGrad} and returns the gradient of the input (null where the input is
 * not differentiable, e.g. token ids).
 */
public interface Layer {
    INDArray forward(Tape tape, INDArray x);

    INDArray backward(Tape tape, INDArray dy);
}
