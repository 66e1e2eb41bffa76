package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Tape;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.List;
import java.util.Map;

/** A causal language model as the Trainer drives it: ids {@code [batch, seq]} to logits {@code [batch·seq, vocab]} and back. */
public interface LanguageModel {
    /** The module tree holding the parameters. */
    Module module();

    INDArray forward(Tape tape, INDArray inputIds);

    void backward(Tape tape, INDArray dLogits);

    /**
     * The logits of each sequence's last position, {@code [batch, vocab]}: what a decoding step needs. By default the
     * forward's last row of each sequence; a model overrides it to run its head on those rows alone.
     */
    default INDArray lastPositionLogits(Tape tape, INDArray inputIds) {
        INDArray logits = forward(tape, inputIds);
        long b = inputIds.size(0);
        long per = logits.size(0) / b;   // positions per sequence: the ids', plus any the model adds
        return logits.reshape('c', b, per, logits.size(1)).get(NDArrayIndex.all(), NDArrayIndex.point(per - 1),
                NDArrayIndex.all());
    }

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

    /** What this model does around its {@link #pipelineLayers()} on each micro-batch: nothing by default. */
    default AroundLayers aroundLayers() {
        return AroundLayers.NONE;
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
