package dev.collie.peft;

import dev.collie.core.nn.KvCache;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.nn.TensorParallelContext;
import dev.collie.core.train.AroundLayers;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * What prefix tuning, prompt tuning and P-tuning share: a {@code prompt_encoder} of virtual tokens next to the base
 * model's children (same names), and a forward that is {@link #layerTape} then the layers on it (with a KV cache the
 * virtual tokens enter the cache on the first call, later calls pass straight through to the base model); backward
 * is its mirror followed by {@link #afterLayersBackward}, as a pipeline runs them stage after stage.
 */
abstract sealed class PromptLearningModel extends PeftModel permits PrefixTuningModel, PromptTuningModel {
    /** Marks a forward that passed straight through to the base model (virtual tokens already in the KV cache). */
    private static final Object PASS_THROUGH = new Object();

    final VirtualTokenEncoder encoder;
    private final AroundLayers around = new AroundLayers() {
        @Override
        public Tape layerTape(Tape tape) {
            return PromptLearningModel.this.layerTape(tape);
        }

        @Override
        public void afterLayersBackward(Tape layerTape) {
            PromptLearningModel.this.afterLayersBackward(layerTape);
        }

        @Override
        public List<Parameter> parameters() {
            return parametersAroundLayers();
        }
    };

    /** {@code encoder} makes the prompt encoder from this model (its base model's shape known by then). */
    PromptLearningModel(LanguageModel base, Supplier<List<Layer>> pipeline, PeftConfig config, boolean flat,
                        Function<PeftModel, VirtualTokenEncoder> encoder) {
        super(new Module() { }, base, pipeline, config, flat);
        this.encoder = encoder.apply(this);
        // the same parameters and children as the base model, names unchanged, plus the prompt encoder
        Module root = base.module();
        root.namedParameters().forEach((name, p) -> {
            if (name.indexOf('.') < 0) {
                registerParameter(name, p);
            }
        });
        root.children().forEach(this::registerModule);
        registerModule("prompt_encoder", this.encoder);
    }

    @Override
    public VirtualTokenEncoder promptEncoder() {
        return encoder;
    }

    /** {@link #layerTape}, {@link #afterLayersBackward} and {@link #parametersAroundLayers()}. */
    @Override
    public AroundLayers aroundLayers() {
        return around;
    }

    /** The tape the layers run on for one micro-batch (see {@link AroundLayers#layerTape}). */
    public abstract Tape layerTape(Tape tape);

    /** After the backward of the layers on {@code layerTape}: nothing here. */
    public void afterLayersBackward(Tape layerTape) {
    }

    /** Trainable parameters used around the layers, so on every pipeline stage: none here. */
    public List<Parameter> parametersAroundLayers() {
        return List.of();
    }

    /** Puts the top-level children replaced in this tree (tensor parallelism: {@code lm_head}) into the base model too. */
    private void syncTopLevel() {
        Module root = base.module();
        Map<String, Module> baseChildren = root.children();
        children().forEach((name, m) -> {
            if (baseChildren.containsKey(name) && baseChildren.get(name) != m) {
                root.replaceModule(name, m);
            }
        });
    }

    @Override
    public void tensorParallelApplied(TensorParallelContext ctx) {
        syncTopLevel();
        super.tensorParallelApplied(ctx);
    }

    /** {@link #layerTape}, then the layers on it; with a KV cache the virtual tokens enter it on the first call. */
    @Override
    public INDArray forward(Tape tape, INDArray inputIds) {
        syncTopLevel();
        KvCache cache = tape.kvCache();
        if (cache != null && cache.length() == 0) {
            INDArray x = firstCachedForward(tape, inputIds, cache);
            if (x != null) {
                return x;
            }
        } else if (cache == null) {
            Tape inner = layerTape(tape);
            tape.save(this, inner);
            return runLayers(inner, inputIds);
        }
        extendMask(tape);
        tape.save(this, PASS_THROUGH);
        return base.forward(tape, inputIds);
    }

    /** The mirror of {@link #forward}: the layers' backward in reverse, then {@link #afterLayersBackward}. */
    @Override
    public void backward(Tape tape, INDArray dLogits) {
        Object s = tape.pop(this);
        if (!(s instanceof Tape inner)) {
            base.backward(tape, dLogits);       // passed through (virtual tokens already in the KV cache)
            return;
        }
        backwardLayers(inner, dLogits);
        afterLayersBackward(inner);
    }

    /** The layers' forward on the layer tape. */
    abstract INDArray runLayers(Tape inner, INDArray ids);

    /** The layers' backward on the layer tape, in reverse. */
    abstract void backwardLayers(Tape inner, INDArray dLogits);

    /**
     * Generation, first call: puts the virtual tokens into {@code cache}; returns the logits when it ran the layers
     * itself, or null to pass through to the base model.
     */
    abstract INDArray firstCachedForward(Tape tape, INDArray ids, KvCache cache);

    /** Puts the virtual tokens' ones in front of the tape's attention mask, if it has one. */
    final void extendMask(Tape tape) {
        INDArray m = tape.attentionMask();
        if (m != null) {
            tape.setAttentionMask(Nd4j.concat(1, Nd4j.ones(m.dataType(), m.size(0), encoder.tokens()), m));
        }
    }
}
