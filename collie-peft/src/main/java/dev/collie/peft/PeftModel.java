package dev.collie.peft;

import dev.collie.core.CollieException;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.nn.Attention;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Embedding;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.TensorParallelContext;
import dev.collie.core.nn.TensorParallelizable;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * A causal language model with a PEFT adapter, made by {@link Peft#wrap} or {@link Peft#loadAdapter}: a
 * {@link LoraModel} (LoRA modules in place of the targeted linear layers, {@code ...q_proj.lora_A.weight}), a
 * {@link PrefixTuningModel} or a {@link PromptTuningModel} (prompt tuning and P-tuning), the last two with a
 * {@code prompt_encoder} ({@code prompt_encoder.embedding.weight}, {@code prompt_encoder.transform.0.weight}, ...).
 * Its module tree is the base model's (same parameter names, base parameters frozen) plus the adapter. What the
 * methods share is here: the base model's shape, the adapter files, the language-model face.
 *
 * <p>With a KV cache (generation), a prefix or a prompt enters the cache on the first call and the cache then counts
 * the virtual positions; an attention mask given on the tape covers the real tokens only.
 */
public abstract sealed class PeftModel extends Module implements LanguageModel, TensorParallelizable
        permits LoraModel, PromptLearningModel {
    final LanguageModel base;
    final PeftConfig config;
    final BaseModelShape shape;
    /** The base model's layers, read afresh on each use (null: the base exposes none). */
    final Supplier<List<Layer>> pipeline;
    final boolean flat;
    /** The base model's attention layers, in order. */
    final List<Attention> attentions = new ArrayList<>();
    final Embedding wordEmbedding;
    final DataType dtype;

    /** The adapter {@code config} describes, on {@code base}; {@code flat}: a loaded adapter's plain table encoder. */
    static PeftModel of(LanguageModel base, Supplier<List<Layer>> pipeline, PeftConfig config, boolean flat) {
        return switch (config.type()) {
            case LORA -> new LoraModel(base, pipeline, (LoraConfig) config);
            case PREFIX_TUNING -> new PrefixTuningModel(base, pipeline, (PrefixTuningConfig) config, flat);
            case PROMPT_TUNING, P_TUNING -> new PromptTuningModel(base, pipeline, config, flat);
        };
    }

    /** {@code node}: the tree this model is (LoRA: the base model's own; the prompt methods: one of their own). */
    PeftModel(Module node, LanguageModel base, Supplier<List<Layer>> pipeline, PeftConfig config, boolean flat) {
        super(node);
        this.base = base;
        this.config = config;
        this.pipeline = pipeline;
        this.flat = flat;
        Module root = base.module();
        Embedding emb = null;
        for (Module m : root.namedModules().values()) {
            if (m instanceof Attention a) {
                attentions.add(a);
            } else if (emb == null && m instanceof Embedding e && e.vocabSize() == base.vocabSize()) {
                emb = e;
            }
        }
        this.wordEmbedding = emb;
        if (attentions.isEmpty() || emb == null) {
            throw new CollieException("PEFT needs a model with attention layers and a word embedding of "
                    + base.vocabSize() + " rows; " + root.getClass().getSimpleName() + " has "
                    + attentions.size() + " attention layers" + (emb == null ? " and no such embedding" : ""));
        }
        Attention a0 = attentions.get(0);
        this.shape = new BaseModelShape(attentions.size(), (int) emb.weight().shape()[1], a0.heads(), a0.kvHeads(),
                a0.headDim(), base.vocabSize());
        this.dtype = emb.weight().dtype();
        for (Parameter p : root.parameters()) {
            p.setTrainable(false);
        }
    }

    // ---- accessors ---------------------------------------------------------------------------------------

    /** The wrapped model. */
    public LanguageModel base() {
        return base;
    }

    public PeftConfig config() {
        return config;
    }

    /** Layers, widths and heads of the base model, as peft records them. */
    public BaseModelShape shape() {
        return shape;
    }

    /** The LoRA modules by the dotted name of the linear layer they wrap (empty for other methods). */
    public Map<String, LoraLinear> loraModules() {
        return Map.of();
    }

    /** The prompt encoder of prefix tuning, prompt tuning and P-tuning, or null for LoRA. */
    public VirtualTokenEncoder promptEncoder() {
        return null;
    }

    /** Whether the prompt encoder is the plain table peft stores (a loaded adapter), whatever MLP the config names. */
    public boolean isFlattened() {
        return flat;
    }

    /** Virtual positions in front of each sequence's logits: the prompt length for prompt tuning/P-tuning, else 0. */
    public int virtualTokens() {
        return 0;
    }

    /** {@code labels} {@code [batch, seq]} with {@link #virtualTokens()} columns of -100 in front (for the loss). */
    @Override
    public INDArray labelsFor(INDArray labels) {
        return Peft.padLabels(labels, virtualTokens());
    }

    // ---- LanguageModel ------------------------------------------------------------------------------------

    @Override
    public Module module() {
        return this;
    }

    @Override
    public long vocabSize() {
        return base.vocabSize();
    }

    @Override
    public CausalLmLoss loss() {
        return base.loss();
    }

    /**
     * The layers this model runs on its {@link #layerTape}, which pipeline parallelism cuts: the base model's (LoRA
     * with its LoRA layers inside; prefix tuning's prefix comes with the tape).
     *
     * @throws CollieException when the base model exposes no layer list
     */
    @Override
    public List<Layer> pipelineLayers() {
        return baseLayers();
    }

    /** The base model's layers, read afresh (given to {@link Peft#wrap}, or the base model's own). */
    final List<Layer> baseLayers() {
        return pipeline != null ? pipeline.get() : base.pipelineLayers();
    }

    @Override
    public Map<String, ParallelStyle> tensorParallelPlan() {
        return base.tensorParallelPlan();
    }

    /**
     * Told by tensor parallelism once it has split this model (the LoRA layers split themselves; the prompt methods'
     * encoders stay whole on every rank).
     *
     * @throws CollieException when the key/value heads cannot be shared out over the ranks
     */
    @Override
    public void tensorParallelApplied(TensorParallelContext ctx) {
        if (shape.kvHeads() % ctx.size() != 0) {
            throw new CollieException(config.type() + " under tensor parallelism: num_key_value_heads = "
                    + shape.kvHeads() + " is not divisible by " + ctx.size() + " tensor-parallel ranks");
        }
    }

    // ---- LoRA merging ---------------------------------------------------------------------------------------

    /** Folds every LoRA adapter into its base weight (the forward then costs what the base model's does). */
    public void merge() {
        loraModules().values().forEach(LoraLinear::merge);
    }

    /** Takes the adapters out of the base weights again. */
    public void unmerge() {
        loraModules().values().forEach(LoraLinear::unmerge);
    }

    /**
     * Merges the LoRA adapters and puts the original linear layers back: the base model, now carrying the adapted
     * weights under its own names, ready to save as a Hugging Face checkpoint. This wrapper is unusable afterwards.
     *
     * @throws CollieException for an adapter that adds virtual tokens (only LoRA merges)
     */
    public LanguageModel mergeAndUnload() {
        throw new CollieException("only LoRA adapters can be merged into the base weights; "
                + config.type() + " adds virtual tokens");
    }

    // ---- files ------------------------------------------------------------------------------------------------

    /**
     * Writes {@code adapter_config.json} and {@code adapter_model.safetensors} as peft's {@code save_pretrained}.
     *
     * @throws CollieException when the LoRA adapter is split over tensor-parallel ranks (use
     *                         {@link #saveAdapter(Path, Map)} with the gathered weights)
     */
    public void saveAdapter(Path dir) {
        AdapterFiles.save(this, dir);
    }

    /**
     * Writes the adapter directory from full-shape weights by this model's parameter names, e.g. what
     * {@code Parallelism.gatherFullWeights()} returns on the lead rank of a tensor- or pipeline-parallel run
     * (names the adapter does not own are ignored): LoRA's {@code <module>.lora_A.weight} / {@code .lora_B.weight},
     * the prompt encoder's {@code prompt_encoder.*} (saved, as peft does, as the encoder's output).
     *
     * @throws CollieException when an adapter tensor is missing or has a shape other than the unsplit adapter's
     */
    public void saveAdapter(Path dir, Map<String, INDArray> fullWeights) {
        AdapterFiles.write(dir, config, shape, AdapterFiles.tensors(this, fullWeights));
    }

    /** Reads the adapter weights of {@code dir} (saved by collie or peft) into this model's adapter. */
    public void loadAdapterWeights(Path dir) {
        AdapterFiles.loadWeights(this, dir);
    }
}
