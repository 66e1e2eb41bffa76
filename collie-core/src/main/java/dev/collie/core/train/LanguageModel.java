package dev.collie.core.train;

import dev.collie.core.nn.Module;
import dev.collie.core.nn.Tape;
import org.nd4j.linalg.api.ndarray.INDArray;

/** A causal language model as the Trainer drives it: ids {@code [batch, seq]} to logits {@code [batch·seq, vocab]} and back. */
public interface LanguageModel {
    /** The module tree holding the parameters. */
    Module module();

    INDArray forward(Tape tape, INDArray inputIds);

    void backward(Tape tape, INDArray dLogits);

    long vocabSize();

    /**
     * The labels that match this model's logits rows for input labels {@code [batch, seq]}: the same,
     * unless the model adds positions of its own (prompt tuning prepends virtual tokens, whose labels
     * are -100).
     */
    default INDArray labelsFor(INDArray labels) {
        return labels;
    }
}
