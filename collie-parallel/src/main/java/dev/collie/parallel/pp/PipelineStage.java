package dev.collie.parallel.pp;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.LayerStack;
import dev.collie.core.nn.LayerWrapper;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One pipeline stage of a {@link LanguageModel}: the layers {@code [bounds[s], bounds[s+1])} of its
 * {@link LanguageModel#pipelineLayers()} (read afresh on every call, so replaced or checkpointed modules
 * show) and their parameters under their Hugging Face names. A tied output head's weight is the embedding's
 * parameter, so on the last stage it carries the name {@code model.embed_tokens.weight}. The parameters the model
 * uses around its layers ({@link dev.collie.core.train.AroundLayers#parameters()}: prefix tuning's encoder) are held by
 * every stage.
 *
 * <p>Forward and backward run the stage's layers in order and in reverse, like the whole model's, on the
 * micro-batch's {@link dev.collie.core.train.AroundLayers#layerTape layer tape}; the first stage takes token ids, the others the
 * previous stage's activations {@code [rows·seq, hidden]} (rows and length of the layer tape).
 */
public final class PipelineStage {
    private final LanguageModel model;
    private final int[] bounds;
    private final int index;

    /** The stage {@code index} of {@code model} cut at {@code bounds} (see {@link PipelinePartition#bounds}). */
    public PipelineStage(LanguageModel model, int[] bounds, int index) {
        if (bounds.length < 2 || bounds[0] != 0) {
            throw new IllegalArgumentException("bounds must start at 0 and have at least two entries: "
                    + Arrays.toString(bounds));
        }
        for (int s = 0; s + 1 < bounds.length; s++) {
            if (bounds[s + 1] <= bounds[s]) {
                throw new IllegalArgumentException("stage " + s + " of bounds " + Arrays.toString(bounds)
                        + " has no layer");
            }
        }
        if (index < 0 || index >= bounds.length - 1) {
            throw new IllegalArgumentException("stage " + index + " outside [0, " + (bounds.length - 1) + ")");
        }
        this.model = model;
        this.bounds = bounds.clone();
        this.index = index;
        layers();    // the bounds must fit the model
    }

    /** Stage {@code index} of {@code stages}, cut by {@code method} ({@code parameters}, {@code uniform}, {@code type:REGEX}). */
    public static PipelineStage of(LanguageModel model, int index, int stages, String method) {
        return new PipelineStage(model, PipelinePartition.bounds(model.pipelineLayers(), stages, method), index);
    }

    public LanguageModel model() {
        return model;
    }

    /** This stage's index, 0 for the stage that takes the token ids. */
    public int index() {
        return index;
    }

    /** The number of stages of the pipeline. */
    public int stages() {
        return bounds.length - 1;
    }

    /** The partition: stage s holds pipeline layers {@code [bounds[s], bounds[s+1])}. */
    public int[] bounds() {
        return bounds.clone();
    }

    public boolean isFirst() {
        return index == 0;
    }

    public boolean isLast() {
        return index == bounds.length - 2;
    }

    /** This stage's layers, read from the model's current module tree. */
    public List<Layer> layers() {
        return layersOf(index);
    }

    private List<Layer> layersOf(int s) {
        List<Layer> all = model.pipelineLayers();
        if (all.size() != bounds[bounds.length - 1]) {
            throw new CollieException("the model has " + all.size() + " pipeline layers but the partition "
                    + Arrays.toString(bounds) + " was made for " + bounds[bounds.length - 1]);
        }
        return all.subList(bounds[s], bounds[s + 1]);
    }

    /**
     * Every distinct parameter of this stage: those the model uses around its layers (on every stage), then those
     * of its layers in layer order, by Hugging Face name.
     */
    public Map<String, Parameter> parameters() {
        return parametersOf(index);
    }

    /**
     * The parameters of stage {@code s} of the same partition (every rank builds the whole model, so it can
     * tell what the other stages hold: e.g. a tied weight on the first and the last, a prefix encoder on all).
     */
    public Map<String, Parameter> parametersOf(int s) {
        if (s < 0 || s >= stages()) {
            throw new IllegalArgumentException("stage " + s + " outside [0, " + stages() + ")");
        }
        Map<Parameter, String> nameOf = new IdentityHashMap<>();
        model.module().namedParameters().forEach((n, p) -> nameOf.putIfAbsent(p, n));
        Map<String, Parameter> out = new LinkedHashMap<>();
        Map<Parameter, Boolean> seen = new IdentityHashMap<>();
        for (Parameter p : model.aroundLayers().parameters()) {
            if (seen.put(p, Boolean.TRUE) == null) {
                String name = nameOf.get(p);
                if (name == null) {
                    throw new CollieException("a parameter " + p + " that " + model.getClass().getSimpleName()
                            + " uses around its layers is not registered in its module tree, so it has no name");
                }
                out.put(name, p);
            }
        }
        for (Layer layer : layersOf(s)) {
            if (!(LayerWrapper.unwrap(layer) instanceof Module m)) {
                continue;
            }
            for (Parameter p : m.parameters()) {
                if (seen.put(p, Boolean.TRUE) != null) {
                    continue;
                }
                String name = nameOf.get(p);
                if (name == null) {
                    throw new CollieException("a parameter " + p + " of pipeline layer "
                            + LayerWrapper.unwrap(layer).getClass().getSimpleName()
                            + " is not registered in the model's module tree, so it has no name");
                }
                out.put(name, p);
            }
        }
        return Collections.unmodifiableMap(out);
    }

    /** The parameters of this stage that compute gradients, by Hugging Face name (what its optimizer updates). */
    public Map<String, Parameter> trainableParameters() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        parameters().forEach((n, p) -> {
            if (p.requiresGrad()) {
                out.put(n, p);
            }
        });
        return Collections.unmodifiableMap(out);
    }

    /** Runs this stage's layers: ids {@code [rows, seq]} on the first stage, activations {@code [rows·seq, hidden]} on the others. */
    public INDArray forward(Tape tape, INDArray x) {
        return LayerStack.forward(layers(), tape, x);
    }

    /**
     * Backward from the gradient of this stage's output; returns the gradient of its input (null on the first
     * stage: token ids have none). Each layer's backward runs in a scratch workspace when an enclosing
     * workspace is open (only its input gradient is kept), and plainly otherwise.
     */
    public INDArray backward(Tape tape, INDArray dy) {
        return LayerStack.backward(layers(), tape, dy);
    }

    @Override
    public String toString() {
        return "PipelineStage " + index + " of " + stages() + " (layers " + bounds[index] + ".." + (bounds[index + 1] - 1) + ")";
    }
}
