package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

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

    /** The loss of this model's logits against labels (a tensor-parallel model's works on its vocabulary shard). */
    default CausalLmLoss loss() {
        return new CausalLmLoss();
    }

    /**
     * The model as its ordered list of layers, ids in, logits out (embedding, blocks, final norm, head):
     * forward runs them in order, pipeline parallelism cuts this list. Read afresh each call, so replaced
     * modules show.
     *
     * @throws CollieException for a model that does not expose its layers
     */
    default List<Layer> pipelineLayers() {
        throw new CollieException(getClass().getSimpleName() + " does not expose its layer list, which pipeline"
                + " parallelism needs");
    }

    /**
     * The tape this model's {@link #pipelineLayers()} run on for one micro-batch, given the tape made for its ids
     * {@code [batch, seq]} (with their padding mask, if any): by default that tape itself. A model that acts around
     * its layers prepares it here: prefix tuning attaches its learned keys and values
     * ({@link Tape#setAttentionPrefix}) and puts the prefix in front of the mask; prompt tuning returns a
     * {@link Tape#sibling} of length {@code virtual + seq}, whose first layer prepends the virtual tokens. The
     * layers, and the loss, run on the returned tape: its {@code batchSize() · seqLen()} is the number of rows
     * between two layers (and between two pipeline stages). Called once per micro-batch, before any layer runs:
     * by the model's own {@link #forward} (which is then this, the layers in order, and {@link #backward} their
     * mirror followed by {@link #afterLayersBackward}), and under pipeline parallelism by every stage, which runs
     * its share of the layers on the returned tape and calls {@link #afterLayersBackward} after their backward.
     */
    default Tape layerTape(Tape tape) {
        return tape;
    }

    /**
     * Called with a {@link #layerTape} once the backward of every pipeline layer this rank ran on it has finished:
     * the model delivers the gradients of what it used around its layers (prefix tuning: its encoder's, from the
     * key and value gradients the attention layers handed back). Nothing by default.
     */
    default void afterLayersBackward(Tape layerTape) {
    }

    /**
     * The trainable parameters this model uses around its layers ({@link #layerTape},
     * {@link #afterLayersBackward}), so on every pipeline stage: e.g. prefix tuning's encoder, whose keys and values
     * every attention layer reads. Each stage holds them and computes its own layers' share of their gradient; the
     * stages sum the shares before the optimizer step, as for a weight tied across stages. None by default.
     */
    default List<Parameter> parametersAroundLayers() {
        return List.of();
    }

    /**
     * Which modules activation checkpointing wraps (the repeated blocks), as module-name patterns like the
     * {@link #tensorParallelPlan()}'s; applied from outside by {@link ActivationCheckpointing}. None by default.
     */
    default List<String> recomputePlan() {
        return List.of();
    }

    /**
     * How tensor parallelism may split this model: module-name patterns ({@code *} one name component,
     * {@code (a|b)} alternatives) to styles, applied from outside. Empty: the model cannot be split.
     */
    default Map<String, ParallelStyle> tensorParallelPlan() {
        return Map.of();
    }
}
