package dev.collie.core.train;

import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Tape;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

/**
 * A {@link LanguageModel} that hands every call to another one: extend it and override what differs (a
 * tensor-parallel model overrides only its {@link #loss()}), so that a method added to the interface reaches the
 * delegate without editing every decorator.
 */
public abstract class ForwardingLanguageModel implements LanguageModel {
    private final LanguageModel delegate;

    protected ForwardingLanguageModel(LanguageModel delegate) {
        this.delegate = delegate;
    }

    /** The model every call goes to. */
    protected LanguageModel delegate() {
        return delegate;
    }

    @Override
    public Module module() {
        return delegate.module();
    }

    @Override
    public INDArray forward(Tape tape, INDArray inputIds) {
        return delegate.forward(tape, inputIds);
    }

    @Override
    public INDArray lastPositionLogits(Tape tape, INDArray inputIds) {
        return delegate.lastPositionLogits(tape, inputIds);
    }

    @Override
    public void backward(Tape tape, INDArray dLogits) {
        delegate.backward(tape, dLogits);
    }

    @Override
    public long vocabSize() {
        return delegate.vocabSize();
    }

    @Override
    public INDArray labelsFor(INDArray labels) {
        return delegate.labelsFor(labels);
    }

    @Override
    public CausalLmLoss loss() {
        return delegate.loss();
    }

    @Override
    public List<Layer> pipelineLayers() {
        return delegate.pipelineLayers();
    }

    @Override
    public AroundLayers aroundLayers() {
        return delegate.aroundLayers();
    }

    @Override
    public List<String> recomputePlan() {
        return delegate.recomputePlan();
    }

    @Override
    public Map<String, ParallelStyle> tensorParallelPlan() {
        return delegate.tensorParallelPlan();
    }
}
