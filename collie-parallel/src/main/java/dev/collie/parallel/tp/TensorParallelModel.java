package dev.collie.parallel.tp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

/**
 * A model after {@link TensorParallel#apply}: the same model object (its module tree now holds this rank's
 * shards), whose logits are this rank's vocabulary shard, so its {@link #loss()} is a
 * {@link VocabParallelLoss}. Everything else is delegated to the model. {@link #vocabSize()} stays the
 * whole vocabulary's size.
 */
public final class TensorParallelModel implements LanguageModel {
    private final LanguageModel base;
    private final Communicator tp;
    private final VocabParallelLoss loss;

    TensorParallelModel(LanguageModel base, Communicator tp) {
        this.base = base;
        this.tp = tp;
        this.loss = new VocabParallelLoss(tp, base.vocabSize());
    }

    /** The model whose modules were replaced (e.g. the {@code LlamaForCausalLM}). */
    public LanguageModel base() {
        return base;
    }

    /** The tensor-parallel group. */
    public Communicator communicator() {
        return tp;
    }

    @Override
    public Module module() {
        return base.module();
    }

    /** Logits of this rank's vocabulary shard, {@code [batch·seq, V/n]}. */
    @Override
    public INDArray forward(Tape tape, INDArray inputIds) {
        return base.forward(tape, inputIds);
    }

    /** Backward from the gradient of this rank's shard of the logits. */
    @Override
    public void backward(Tape tape, INDArray dLogits) {
        base.backward(tape, dLogits);
    }

    /** The whole vocabulary's size (the logits this rank sees have {@code vocabSize() / n} columns). */
    @Override
    public long vocabSize() {
        return base.vocabSize();
    }

    @Override
    public INDArray labelsFor(INDArray labels) {
        return base.labelsFor(labels);
    }

    /** Cross-entropy over the vocabulary shards ({@link VocabParallelLoss}); one object, reused. */
    @Override
    public CausalLmLoss loss() {
        return loss;
    }

    @Override
    public List<Layer> pipelineLayers() {
        return base.pipelineLayers();
    }

    @Override
    public Tape layerTape(Tape tape) {
        return base.layerTape(tape);
    }

    @Override
    public void afterLayersBackward(Tape layerTape) {
        base.afterLayersBackward(layerTape);
    }

    @Override
    public List<Parameter> parametersAroundLayers() {
        return base.parametersAroundLayers();
    }

    @Override
    public Map<String, ParallelStyle> tensorParallelPlan() {
        return base.tensorParallelPlan();
    }

    @Override
    public String toString() {
        return "TensorParallel(" + base.getClass().getSimpleName() + ", rank " + tp.rank() + " of " + tp.size() + ")";
    }
}
