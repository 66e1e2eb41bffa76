package dev.collie.peft;

import dev.collie.core.CollieException;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.nn.Attention;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Embedding;
import dev.collie.core.nn.KvCache;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.nn.TensorParallelContext;
import dev.collie.core.nn.TensorParallelizable;
import dev.collie.core.tensor.Kernels;
import dev.collie.core.tensor.Workspaces;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/**
 * A causal language model with a PEFT adapter, made by {@link Peft#wrap} or {@link Peft#loadAdapter}. Its module
 * tree is the base model's (same parameter names, base parameters frozen) plus the adapter: LoRA modules in place of
 * the targeted linear layers ({@code ...q_proj.lora_A.weight}), or a {@code prompt_encoder} for prefix tuning,
 * prompt tuning and P-tuning ({@code prompt_encoder.embedding.weight}, {@code prompt_encoder.transform.0.weight}, ...).
 *
 * <p>As in peft, prompt tuning and P-tuning return logits for the virtual positions too:
 * {@code [batch·(virtualTokens + seq), vocab]}; pad the labels with {@link #labelsFor} (-100 in front, as CoLLiE's
 * trainer does) so the loss ignores them. Prefix tuning and LoRA return {@code [batch·seq, vocab]}.
 * With a KV cache (generation), the prefix or the prompt enters the cache on the first call and the cache then
 * counts the virtual positions; an attention mask given on the tape covers the real tokens only.
 */
public final class PeftModel extends Module implements LanguageModel, TensorParallelizable {
    private final LanguageModel base;
    private final PeftConfig config;
    private final BaseModelShape shape;
    /** The base model's layers, read afresh on each use (null: the base exposes none). */
    private final Supplier<List<Layer>> pipeline;
    /** LoRA: the dotted names of the wrapped linear layers (the modules are read from the live tree). */
    private final List<String> loraNames = new ArrayList<>();
    private final VirtualTokenEncoder encoder;
    private final boolean flat;
    private final int virtual;
    private final List<Attention> attentions = new ArrayList<>();
    private final IdentityHashMap<Attention, Integer> layerOf = new IdentityHashMap<>();
    private final Embedding wordEmbedding;
    private final DataType dtype;
    /** The tensor-parallel group once the model is split (prefix tuning slices its keys and values by it). */
    private volatile TensorParallelContext tp;

    /** Marks a forward that passed straight through to the base model (virtual tokens already in the KV cache). */
    private static final Object PASS_THROUGH = new Object();

    PeftModel(LanguageModel base, Supplier<List<Layer>> pipeline, PeftConfig config, boolean flat) {
        super(treeOf(base, config));
        this.base = base;
        this.config = config;
        this.pipeline = pipeline;
        this.flat = flat;
        Module root = base.module();
        Map<String, Module> modules = new LinkedHashMap<>(root.namedModules());
        Embedding emb = null;
        for (Module m : modules.values()) {
            if (m instanceof Attention a) {
                layerOf.put(a, attentions.size());
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
        if (config instanceof LoraConfig c) {
            wrapLinears(c, modules);
            this.encoder = null;
            this.virtual = 0;
        } else if (config instanceof PrefixTuningConfig c) {
            int out = shape.numLayers() * 2 * shape.kvWidth();
            this.encoder = flat || !c.prefixProjection()
                    ? VirtualTokenEncoder.table(c.numVirtualTokens(), out, dtype)
                    : VirtualTokenEncoder.prefixProjection(c.numVirtualTokens(), shape.kvWidth(),
                            c.encoderHiddenSize(shape), out, dtype);
            if (c.zeroInit() && !flat) {
                encoder.zeroOutput();
            }
            this.virtual = 0;
        } else if (config instanceof PromptTuningConfig c) {
            this.encoder = VirtualTokenEncoder.table(c.numVirtualTokens(), shape.hidden(), dtype);
            if (!flat) {
                initPrompt(c);
            }
            this.virtual = c.numVirtualTokens();
        } else {
            PromptEncoderConfig c = (PromptEncoderConfig) config;
            this.encoder = flat ? VirtualTokenEncoder.table(c.numVirtualTokens(), shape.hidden(), dtype)
                    : VirtualTokenEncoder.promptMlp(c.numVirtualTokens(), shape.hidden(), c.encoderHiddenSize(shape),
                            dtype);
            this.virtual = c.numVirtualTokens();
        }
        if (config.type().isPromptLearning() && config.type() != PeftType.PREFIX_TUNING && pipeline == null) {
            throw new CollieException(config.type() + " needs the model's layer list (a pipelineLayers() method, or"
                    + " pass it to Peft.wrap) to put the virtual tokens after the embedding");
        }
        // LoRA: this module is the base model's tree itself (a second face); the others: the same parameters and
        // children, names unchanged, plus the prompt encoder
        if (config.type() != PeftType.LORA) {
            root.namedParameters().forEach((name, p) -> {
                if (name.indexOf('.') < 0) {
                    registerParameter(name, p);
                }
            });
            root.children().forEach(this::registerModule);
            registerModule("prompt_encoder", encoder);
        }
    }

    /**
     * The node this model's tree is: for LoRA the base model's own (its parameters and children, shared), so a child
     * replaced through either (tensor parallelism replacing {@code lm_head}) is replaced in both; for the prompt
     * methods a node of its own, which adds {@code prompt_encoder} to the base model's children (kept in step by
     * {@link #syncTopLevel()}).
     */
    private static Module treeOf(LanguageModel base, PeftConfig config) {
        return config.type() == PeftType.LORA ? base.module() : new Module() { };
    }

    /** Puts the top-level children replaced in this tree (tensor parallelism: {@code lm_head}) into the base model too. */
    private void syncTopLevel() {
        if (config.type() == PeftType.LORA) {
            return;        // one tree
        }
        Module root = base.module();
        Map<String, Module> baseChildren = root.children();
        children().forEach((name, m) -> {
            if (baseChildren.containsKey(name) && baseChildren.get(name) != m) {
                root.replaceModule(name, m);
            }
        });
    }

    private void wrapLinears(LoraConfig c, Map<String, Module> modules) {
        for (Map.Entry<String, Module> e : modules.entrySet()) {
            String name = e.getKey();
            if (!(e.getValue() instanceof Linear linear) || !c.matches(name)) {
                continue;
            }
            int dot = name.lastIndexOf('.');
            if (dot < 0 || (pipeline != null && pipeline.get().contains(linear))) {
                throw new CollieException("LoRA target " + name + " is called directly by the model, not through its"
                        + " parent module, so it cannot be wrapped (target layers inside the decoder blocks)");
            }
            Module parent = modules.get(name.substring(0, dot));
            LoraLinear w = new LoraLinear(linear, c.r(), c.scaling(), c.dropout(), c.seed() * 31 + name.hashCode());
            parent.replaceModule(name.substring(dot + 1), w);
            loraNames.add(name);
        }
        if (loraNames.isEmpty()) {
            throw new CollieException("no linear layer matches the LoRA targets "
                    + (c.targetRegex() != null ? "/" + c.targetRegex() + "/" : c.targets())
                    + " (to combine LoRA with tensor parallelism, wrap the whole model first and split the PeftModel)");
        }
    }

    private void initPrompt(PromptTuningConfig c) {
        int n = c.numVirtualTokens();
        long[] ids;
        switch (c.init()) {
            case RANDOM -> {
                return;
            }
            case SAMPLE_VOCAB -> {
                ids = new long[n];
                INDArray r = Nd4j.rand(DataType.DOUBLE, n).muli(shape.vocab());
                for (int i = 0; i < n; i++) {
                    ids[i] = Math.min(shape.vocab() - 1, (long) r.getDouble(i));
                }
            }
            case TEXT -> {
                if (c.initTokenIds() == null || c.initTokenIds().isEmpty()) {
                    throw new CollieException("prompt tuning TEXT initialisation needs the token ids of the text");
                }
                ids = new long[n];
                for (int i = 0; i < n; i++) {
                    ids[i] = c.initTokenIds().get(i % c.initTokenIds().size());
                }
            }
            default -> throw new IllegalStateException();
        }
        INDArray rows = Nd4j.createFromArray(ids);
        Embedding.checkIds(rows, shape.vocab());
        encoder.tableParameter().data().assign(Kernels.get().gatherRows(wordEmbedding.weight().data(), rows));
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
        Map<String, Module> modules = namedModules();
        Map<String, LoraLinear> out = new LinkedHashMap<>();
        for (String name : loraNames) {
            if (modules.get(name) instanceof LoraLinear l) {
                out.put(name, l);
            }
        }
        return Collections.unmodifiableMap(out);
    }

    /** The prompt encoder of prefix tuning, prompt tuning and P-tuning, or null for LoRA. */
    public VirtualTokenEncoder promptEncoder() {
        return encoder;
    }

    /** Whether the prompt encoder is the plain table peft stores (a loaded adapter), whatever MLP the config names. */
    public boolean isFlattened() {
        return flat;
    }

    /** Virtual positions in front of each sequence's logits: the prompt length for prompt tuning/P-tuning, else 0. */
    public int virtualTokens() {
        return virtual;
    }

    /** {@code labels} {@code [batch, seq]} with {@link #virtualTokens()} columns of -100 in front (for the loss). */
    public INDArray labelsFor(INDArray labels) {
        return Peft.padLabels(labels, virtual);
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
     * The layers this model runs on its {@link #layerTape}: the base model's (LoRA: with its LoRA layers inside;
     * prefix tuning: unchanged, the prefix comes with the tape), or for prompt tuning and P-tuning a
     * {@link VirtualTokenLayer} (the base embedding, then the virtual tokens in front) followed by the base model's
     * other layers. Pipeline parallelism cuts this list.
     *
     * @throws CollieException when the base model exposes no layer list
     */
    @Override
    public List<Layer> pipelineLayers() {
        List<Layer> layers = baseLayers();
        if (virtual == 0) {
            return layers;
        }
        List<Layer> out = new ArrayList<>(layers);
        out.set(0, promptLayer(layers.get(0)));
        return Collections.unmodifiableList(out);
    }

    /** The base model's layers, read afresh (given to {@link Peft#wrap}, or the base model's own). */
    private List<Layer> baseLayers() {
        return pipeline != null ? pipeline.get() : base.pipelineLayers();
    }

    private volatile VirtualTokenLayer promptLayer;

    /** The virtual-token layer around the base model's current embedding layer (made anew when it was replaced). */
    private VirtualTokenLayer promptLayer(Layer embedding) {
        VirtualTokenLayer l = promptLayer;
        if (l == null || l.embedding() != embedding) {
            synchronized (this) {
                l = promptLayer;
                if (l == null || l.embedding() != embedding) {
                    l = new VirtualTokenLayer(embedding, encoder);
                    promptLayer = l;
                }
            }
        }
        return l;
    }

    /**
     * The tape the layers run on: prefix tuning runs its encoder on {@code tape}, attaches the keys and values every
     * attention layer puts in front of its own (their gradients are collected for {@link #afterLayersBackward}) and
     * puts the prefix's ones in front of the mask; prompt tuning and P-tuning return a sibling of length
     * {@code virtual + seq} (mask extended likewise); LoRA returns {@code tape}. Every pipeline stage calls it, so
     * under pipeline parallelism each stage runs the prefix encoder (a few rows) and delivers its layers' share of
     * its gradient: the encoder's parameters are {@link #parametersAroundLayers()}.
     */
    @Override
    public Tape layerTape(Tape tape) {
        return switch (config.type()) {
            case LORA -> tape;
            case PREFIX_TUNING -> prefixTape(tape);
            case PROMPT_TUNING, P_TUNING -> promptTape(tape);
        };
    }

    /**
     * Prefix tuning: the encoder's backward from the key/value gradients the attention layers left on the tape (summed
     * over tensor-parallel ranks). Nothing for the other methods (prompt tuning's encoder is inside the first layer).
     */
    @Override
    public void afterLayersBackward(Tape layerTape) {
        if (config.type() == PeftType.PREFIX_TUNING && layerTape.attentionPrefix() instanceof PrefixState st
                && st.grad != null) {
            TensorParallelContext c = tp;
            // each rank filled the columns of its own key/value heads: the sum is the whole gradient, on every rank
            encoder.backward(layerTape, c == null ? st.grad : c.allReduceSum(st.grad));
        }
    }

    /** Prefix tuning's encoder parameters: used around the layers, so by every pipeline stage. None otherwise. */
    @Override
    public List<Parameter> parametersAroundLayers() {
        return config.type() == PeftType.PREFIX_TUNING ? encoder.parameters() : List.of();
    }

    @Override
    public Map<String, ParallelStyle> tensorParallelPlan() {
        return base.tensorParallelPlan();
    }

    /**
     * Told by tensor parallelism once it has split this model (the LoRA layers split themselves): the prompt methods'
     * encoders stay whole on every rank. Prompt tuning and P-tuning need nothing more (their virtual tokens enter
     * after the embedding, whose output is whole); prefix tuning hands each attention layer the keys and values of
     * the rank's key/value heads and sums the prefix gradient over the ranks before the encoder's backward.
     */
    @Override
    public void tensorParallelApplied(TensorParallelContext ctx) {
        syncTopLevel();
        if (shape.kvHeads() % ctx.size() != 0) {
            throw new CollieException(config.type() + " under tensor parallelism: num_key_value_heads = "
                    + shape.kvHeads() + " is not divisible by " + ctx.size() + " tensor-parallel ranks");
        }
        this.tp = ctx;
    }

    /** Key/value heads of this rank (all of them when the model is not split). */
    private int localKvHeads() {
        TensorParallelContext c = tp;
        return c == null ? shape.kvHeads() : shape.kvHeads() / c.size();
    }

    /** The first key/value head of this rank. */
    private int firstKvHead() {
        TensorParallelContext c = tp;
        return c == null ? 0 : c.rank() * localKvHeads();
    }

    /**
     * {@link #layerTape}, then the {@link #pipelineLayers()} in order on it (prefix tuning: the base model's forward,
     * which is its layers), as a pipeline runs them stage after stage. With a KV cache (generation) the prefix or the
     * prompt enters the cache on the first call; later calls pass straight through to the base model.
     */
    @Override
    public INDArray forward(Tape tape, INDArray inputIds) {
        syncTopLevel();
        if (config.type() == PeftType.LORA) {
            return base.forward(tape, inputIds);
        }
        if (tape.kvCache() != null) {
            return cachedForward(tape, inputIds, tape.kvCache());
        }
        Tape inner = layerTape(tape);
        tape.save(this, inner);
        return runLayers(inner, inputIds);
    }

    /** The mirror of {@link #forward}: the layers' backward in reverse, then {@link #afterLayersBackward}. */
    @Override
    public void backward(Tape tape, INDArray dLogits) {
        if (config.type() == PeftType.LORA) {
            base.backward(tape, dLogits);
            return;
        }
        Object s = tape.pop(this);
        if (!(s instanceof Tape inner)) {
            base.backward(tape, dLogits);       // passed through (virtual tokens already in the KV cache)
            return;
        }
        if (config.type() == PeftType.PREFIX_TUNING) {
            base.backward(inner, dLogits);
        } else {
            INDArray d = dLogits;
            List<Layer> layers = pipelineLayers();
            for (int i = layers.size() - 1; i >= 0; i--) {
                Layer layer = layers.get(i);
                INDArray dy = d;
                d = Workspaces.scratch(() -> layer.backward(inner, dy));
            }
        }
        afterLayersBackward(inner);
    }

    /** The layers on the layer tape: prefix tuning runs the base model's forward, the others the pipeline layers. */
    private INDArray runLayers(Tape inner, INDArray ids) {
        if (config.type() == PeftType.PREFIX_TUNING) {
            return base.forward(inner, ids);
        }
        INDArray x = ids;
        for (Layer l : pipelineLayers()) {
            x = l.forward(inner, x);
        }
        return x;
    }

    // ---- prefix tuning ------------------------------------------------------------------------------------

    /** The prefix handed to every attention layer of one forward; collects their key/value gradients. */
    private final class PrefixState implements Attention.Prefix {
        final INDArray kv;
        final int batch;
        final INDArray grad;

        PrefixState(INDArray kv, int batch, INDArray grad) {
            this.kv = kv;
            this.batch = batch;
            this.grad = grad;
        }

        @Override
        public int length() {
            return encoder.tokens();
        }

        @Override
        public INDArray[] keysValues(Tape tape, Attention attention) {
            return prefixKeysValues(kv, attention, batch);
        }

        @Override
        public void backward(Tape tape, Attention attention, INDArray dKeys, INDArray dValues) {
            int l = layer(attention);
            grad.get(all(), prefixColumns(l, 0)).addi(fromPrefixHeads(dKeys));
            grad.get(all(), prefixColumns(l, 1)).addi(fromPrefixHeads(dValues));
        }
    }

    private int layer(Attention a) {
        Integer l = layerOf.get(a);
        if (l == null) {
            throw new IllegalStateException("an attention module that is not part of the wrapped model");
        }
        return l;
    }

    /**
     * Layer {@code l}'s keys and values {@code [batch, kvHeads, n, headDim]} from the encoder output
     * {@code [n, layers·2·kvHeads·headDim]}: per virtual token, for each layer keys then values, head after head
     * (peft's {@code view(batch, n, layers·2, heads, headDim)} then {@code permute(2, 0, 3, 1, 4)}).
     */
    private INDArray[] prefixKeysValues(INDArray kv, Attention a, int batch) {
        int l = layer(a);
        int n = encoder.tokens();
        int kvh = localKvHeads();
        INDArray[] out = new INDArray[2];
        for (int j = 0; j < 2; j++) {
            INDArray cols = kv.get(all(), prefixColumns(l, j)).dup('c');
            INDArray heads = cols.reshape('c', n, kvh, shape.headDim()).permute(1, 0, 2).dup('c')
                    .reshape('c', 1, kvh, n, shape.headDim());
            out[j] = batch == 1 ? heads : heads.broadcast(batch, kvh, n, shape.headDim());
        }
        return out;
    }

    /**
     * The encoder output's columns holding layer {@code l}'s keys ({@code j = 0}) or values ({@code j = 1}) for this
     * rank's key/value heads (all heads when the model is not split).
     */
    private INDArrayIndex prefixColumns(int l, int j) {
        long from = (long) (2 * l + j) * shape.kvWidth() + (long) firstKvHead() * shape.headDim();
        return interval(from, from + (long) localKvHeads() * shape.headDim());
    }

    /** {@code [batch, kvHeads, n, headDim]} (this rank's heads) summed over the batch, back to {@code [n, kvHeads·headDim]}. */
    private INDArray fromPrefixHeads(INDArray d) {
        return d.sum(0).permute(1, 0, 2).dup('c').reshape('c', encoder.tokens(), (long) localKvHeads() * shape.headDim());
    }

    /** Runs the encoder on {@code tape} and attaches its keys and values as the tape's attention prefix. */
    private Tape prefixTape(Tape tape) {
        if (tape.attentionPrefix() != null) {
            throw new IllegalStateException("the tape already carries an attention prefix (layerTape called twice?)");
        }
        INDArray kv = encoder.forward(tape);
        INDArray grad = tape.isTraining() ? Nd4j.zeros(kv.dataType(), kv.shape()) : null;
        extendMask(tape);
        tape.setAttentionPrefix(new PrefixState(kv, tape.batchSize(), grad));
        return tape;
    }

    /**
     * Generation: the prefix's keys and values, or the prompt's positions, enter the KV cache on the first call
     * (the cache then counts them); later calls pass straight through to the base model with the mask extended.
     */
    private INDArray cachedForward(Tape tape, INDArray ids, KvCache cache) {
        if (config.type() == PeftType.PREFIX_TUNING) {
            if (cache.length() == 0) {
                INDArray kv = encoder.forward(Tape.forInference(1, encoder.tokens()));
                for (Attention a : attentions) {
                    INDArray[] p = prefixKeysValues(kv, a, tape.batchSize());
                    cache.append(a, p[0], p[1]);
                }
                cache.advance(encoder.tokens());
                tape.setKvCache(cache);
            }
        } else if (cache.length() == 0) {
            Tape inner = promptTape(tape);
            inner.setKvCache(cache);
            INDArray x = runLayers(inner, ids);
            cache.advance(virtual);   // the caller advances by the real tokens
            tape.save(this, inner);
            return x;
        }
        extendMask(tape);
        tape.save(this, PASS_THROUGH);
        return base.forward(tape, ids);
    }

    /** Puts the prefix's n ones in front of the tape's attention mask, if it has one. */
    private void extendMask(Tape tape) {
        INDArray m = tape.attentionMask();
        if (m != null) {
            tape.setAttentionMask(Nd4j.concat(1, Nd4j.ones(m.dataType(), m.size(0), encoder.tokens()), m));
        }
    }

    // ---- prompt tuning / P-tuning -------------------------------------------------------------------------

    /** A sibling of {@code tape} of length {@code virtual + seq}, its mask (if any) with the virtual positions' ones in front. */
    private Tape promptTape(Tape tape) {
        int b = tape.batchSize();
        Tape inner = tape.sibling(b, virtual + tape.seqLen());
        INDArray m = tape.attentionMask();
        if (m != null) {
            inner.setAttentionMask(Nd4j.concat(1, Nd4j.ones(m.dataType(), b, virtual), m));
        }
        return inner;
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
     */
    public LanguageModel mergeAndUnload() {
        if (config.type() != PeftType.LORA) {
            throw new CollieException("only LoRA adapters can be merged into the base weights; "
                    + config.type() + " adds virtual tokens");
        }
        Map<String, Module> modules = namedModules();
        for (Map.Entry<String, LoraLinear> e : loraModules().entrySet()) {
            e.getValue().merge();
            String name = e.getKey();
            modules.get(name.substring(0, name.lastIndexOf('.')))
                    .replaceModule(name.substring(name.lastIndexOf('.') + 1), e.getValue().baseModule());
        }
        loraNames.clear();
        for (Parameter p : base.module().parameters()) {
            p.setTrainable(true);
        }
        return base;
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
