package dev.collie.core.train;

import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;

import java.util.List;

/**
 * What a model does around its {@link LanguageModel#pipelineLayers() layers} on each micro-batch: nothing for a
 * plain model ({@link #NONE}); prefix tuning attaches its learned keys and values to the tape and runs its encoder's
 * backward afterwards; prompt tuning runs the layers on a longer tape. The model's own forward is {@link #layerTape},
 * its layers in order on that tape, and backward their mirror followed by {@link #afterLayersBackward}; under pipeline
 * parallelism every stage does the same with its share of the layers, so one rank and a pipeline run the same code.
 */
public interface AroundLayers {
    /** Nothing around the layers. */
    AroundLayers NONE = new AroundLayers() { };

    /**
     * The tape the layers run on for one micro-batch, given the tape made for its ids {@code [batch, seq]} (with
     * their padding mask, if any); called once per micro-batch before any layer runs. Its
     * {@code batchSize() · seqLen()} is the number of rows between two layers (and between two pipeline stages).
     */
    default Tape layerTape(Tape tape) {
        return tape;
    }

    /** Called with a {@link #layerTape} once the backward of every layer this rank ran on it has finished. */
    default void afterLayersBackward(Tape layerTape) {
    }

    /**
     * The trainable parameters used around the layers, so by every pipeline stage (prefix tuning's encoder): each
     * stage computes its layers' share of their gradient and the stages sum the shares, as for a tied weight.
     */
    default List<Parameter> parameters() {
        return List.of();
    }
}
