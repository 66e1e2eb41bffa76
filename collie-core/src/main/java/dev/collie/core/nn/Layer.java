package dev.collie.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A module with one input and one output. {@code forward} saves what {@code backward} needs on the tape;
 * {@code backward} takes the gradient of the output, delivers parameter gradients through
 * {@link Parameter#accumulateGrad} and returns the gradient of the input (null where the input is
 * not differentiable, e.g. token ids). A backward computes its input gradient before it delivers the
 * gradients of its parameters: a fused-backward optimizer updates a parameter inside the delivery.
 */
public interface Layer {
    INDArray forward(Tape tape, INDArray x);

    INDArray backward(Tape tape, INDArray dy);
}
