package dev.collie.models.decoder;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.io.AtomicFiles;
import dev.collie.core.io.HfConfig;
import dev.collie.core.nn.RopeScaling;
import dev.collie.core.tensor.MatmulProbe;
import dev.collie.core.train.Memory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.TreeMap;
import java.util.function.BiConsumer;

/**
 * The hyper-parameters of a decoder of one of the {@link ModelFamily families}, as in a Hugging Face
 * {@code config.json}: immutable, and validated by its constructor (messages name the field). Read with
 * {@link #load}/{@link #fromJson} through {@link HfConfig} (the family from {@code model_type}, either rope layout:
 * {@link RopeScaling#read}), written with {@link #toJson()}/{@link #save} in the family's own keys (for LLaMA the
 * transformers 5 layout plus the 4.x rope fields). {@code numKeyValueHeads} 0 means "as many as attention heads",
 * {@code headDim} 0 "hidden_size / heads", {@code rotaryDim} 0 the family's share of a head; an empty
 * {@code layerTypes} means every layer "full_attention".
 *
 * @param rotaryDim the dimensions of each head the rotary embedding turns (the first ones; the rest pass through)
 * @param rmsNormEps every norm's epsilon (RMSNorm's, or LayerNorm's for the families that have it)
 * @param qkvBias bias on the query, key and value projections
 * @param outputBias bias on the attention's output projection
 * @param qkNorm RMSNorm of each query and key head before the rotary embedding (Qwen3)
 * @param slidingWindow keys a query sees on a "sliding_attention" layer, itself included (0: none)
 * @param layerTypes per layer "full_attention" or "sliding_attention" (empty: all full)
 * @param autoMap config.json's {@code auto_map}: the classes of a remote-code family's own Python files
 *                (InternLM2's, ChatGLM's), kept so that a saved directory loads in transformers as the original did
 */
public record DecoderConfig(ModelFamily family, int vocabSize, int hiddenSize, int intermediateSize,
                            int numHiddenLayers, int numAttentionHeads, int numKeyValueHeads, int headDim,
                            int rotaryDim, double rmsNormEps, RopeScaling rope, int maxPositionEmbeddings,
                            boolean tieWordEmbeddings, boolean qkvBias, boolean outputBias, boolean mlpBias, boolean qkNorm, int slidingWindow,
                            List<String> layerTypes, double attentionDropout, String hiddenAct,
                            double initializerRange, OptionalInt bosTokenId, List<Integer> eosTokenIds,
                            OptionalInt padTokenId, Optional<String> dtype, Map<String, String> autoMap) {
    /** A layer type: attention over every earlier position. */
    public static final String FULL_ATTENTION = "full_attention";
    /** A layer type: attention over the last {@code sliding_window} positions. */
    public static final String SLIDING_ATTENTION = "sliding_attention";

    public DecoderConfig {
        Objects.requireNonNull(family, "family");
        autoMap = Collections.unmodifiableMap(new TreeMap<>(autoMap));
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", numHiddenLayers);
        positive("num_attention_heads", numAttentionHeads);
        numKeyValueHeads = numKeyValueHeads == 0 ? numAttentionHeads : numKeyValueHeads;
        positive("num_key_value_heads", numKeyValueHeads);
        if (numAttentionHeads % numKeyValueHeads != 0) {
            throw new CollieException("num_attention_heads (" + numAttentionHeads
                    + ") must be divisible by num_key_value_heads (" + numKeyValueHeads + ")");
        }
        if (headDim == 0) {
            if (hiddenSize % numAttentionHeads != 0) {
                throw new CollieException("hidden_size (" + hiddenSize + ") must be divisible by num_attention_heads ("
                        + numAttentionHeads + "), or head_dim must be given");
            }
            headDim = hiddenSize / numAttentionHeads;
        }
        positive("head_dim", headDim);
        if (headDim % 2 != 0) {
            throw new CollieException("head_dim (" + headDim + ") must be even for rotary embeddings");
        }
        rotaryDim = rotaryDim == 0 ? family.rotaryDim(headDim) : rotaryDim;
        if (!(rmsNormEps > 0) || Double.isInfinite(rmsNormEps)) {
            throw new CollieException("rms_norm_eps (" + rmsNormEps + ") must be positive");
        }
        positive("max_position_embeddings", maxPositionEmbeddings);
        // every weight one array that ND4J indexes with int, the total a long: refused here, before any allocation
        arraySize("model.embed_tokens.weight", "vocab_size × hidden_size", vocabSize, hiddenSize);
        arraySize("model.layers.*.self_attn.q_proj.weight", "num_attention_heads × head_dim × hidden_size",
                (long) numAttentionHeads * headDim, hiddenSize);
        arraySize("model.layers.*.mlp.gate_proj.weight", "intermediate_size × hidden_size", intermediateSize,
                hiddenSize);
        if (count(family.layout(), vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, tieWordEmbeddings, qkvBias, outputBias, mlpBias, qkNorm) == Long.MAX_VALUE) {
            throw new CollieException("num_hidden_layers (" + numHiddenLayers + ") × the parameters of one layer"
                    + " is more parameters than a 64-bit count holds");
        }
        if (!(attentionDropout >= 0 && attentionDropout < 1)) {
            throw new CollieException("attention_dropout (" + attentionDropout + ") must be in [0, 1)");
        }
        if (!(initializerRange >= 0) || Double.isInfinite(initializerRange)) {
            throw new CollieException("initializer_range (" + initializerRange + ") must be non-negative");
        }
        if (hiddenAct == null || !family.activations().contains(hiddenAct)) {
            throw new CollieException("hidden_act \"" + hiddenAct + "\" is not supported: " + family.modelType()
                    + " uses \"" + family.activations().get(0) + "\"");
        }
        tokenId("bos_token_id", bosTokenId, vocabSize);
        eosTokenIds = List.copyOf(eosTokenIds);
        for (int e : eosTokenIds) {
            tokenId("eos_token_id", OptionalInt.of(e), vocabSize);
        }
        tokenId("pad_token_id", padTokenId, vocabSize);
        if (rope == null) {
            throw new CollieException("rope_parameters is missing");
        }
        rope.validate("rope_parameters");
        if (slidingWindow < 0) {
            throw new CollieException("sliding_window (" + slidingWindow + ") must be positive, or absent for none");
        }
        layerTypes = List.copyOf(layerTypes);
        if (!layerTypes.isEmpty() && layerTypes.size() != numHiddenLayers) {
            throw new CollieException("layer_types has " + layerTypes.size() + " entries but num_hidden_layers is "
                    + numHiddenLayers);
        }
        for (int i = 0; i < layerTypes.size(); i++) {
            String t = layerTypes.get(i);
            if (!t.equals(FULL_ATTENTION) && !t.equals(SLIDING_ATTENTION)) {
                throw new CollieException("layer_types[" + i + "] is \"" + t + "\": expected \"" + FULL_ATTENTION
                        + "\" or \"" + SLIDING_ATTENTION + "\"");
            }
            if (t.equals(SLIDING_ATTENTION) && slidingWindow == 0) {
                throw new CollieException("layer_types[" + i + "] is \"" + SLIDING_ATTENTION
                        + "\" but sliding_window is not set");
            }
        }
        family.validate(qkvBias, outputBias, mlpBias, qkNorm, layerTypes, numAttentionHeads, numKeyValueHeads,
                headDim, rotaryDim, headDim * numAttentionHeads == hiddenSize, rope, tieWordEmbeddings);
    }

    /** Keys a query of layer {@code layer} sees, itself included: {@link #slidingWindow} on a sliding layer, else 0 (all). */
    public int attentionWindow(int layer) {
        return !layerTypes.isEmpty() && layerTypes.get(layer).equals(SLIDING_ATTENTION) ? slidingWindow : 0;
    }

    private static void positive(String field, int v) {
        if (v <= 0) {
            throw new CollieException(field + " (" + v + ") must be positive");
        }
    }

    /** The most elements one weight may have: ND4J's BLAS calls and several of its ops index an array with int. */
    public static final long MAX_ARRAY_ELEMENTS = Integer.MAX_VALUE;

    private static void arraySize(String tensor, String fields, long rows, long cols) {
        if (rows * cols > MAX_ARRAY_ELEMENTS) {     // both below 2^31 + 2^31·2^31: no overflow
            throw new CollieException(tensor + " would have " + fields + " = " + rows + " × " + cols + " = "
                    + String.format(Locale.ROOT, "%,d", rows * cols) + " elements, more than one array may hold ("
                    + String.format(Locale.ROOT, "%,d", MAX_ARRAY_ELEMENTS) + ")");
        }
    }

    /**
     * The number of parameters of a model of this config (the tied head counted once), computed from the sizes
     * alone: what {@code new DecoderForCausalLM(config, dtype).parameterCount()} would report, without building it.
     */
    public long parameterCount() {
        return count(family.layout(), vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, tieWordEmbeddings, qkvBias, outputBias, mlpBias, qkNorm);
    }

    /**
     * Float32 bytes of one layer's attention probabilities {@code [rows·heads, seqLen, seqLen]}: what every step over
     * {@code rows} rows of {@code seqLen} tokens allocates at least once (saturating at {@link Long#MAX_VALUE}).
     */
    public long attentionScoreBytes(long rows, long seqLen) {
        return Memory.times(Memory.times(Memory.times(rows, numAttentionHeads), Memory.times(seqLen, seqLen)), 4);
    }

    /** Float32 bytes of the logits {@code [rows·seqLen, vocab_size]} of {@code rows} rows of {@code seqLen} tokens. */
    public long logitBytes(long rows, long seqLen) {
        return Memory.times(Memory.times(rows, seqLen), 4L * vocabSize);
    }

    /**
     * Parameters of the given sizes: the ends' and {@code layers} times one block's ({@link #forEachParameter}'s,
     * counted without visiting every block); {@link Long#MAX_VALUE} on overflow.
     */
    private static long count(FamilyLayout names, long vocab, long h, long inner, long layers, long heads,
                              long kvHeads, long headDim, boolean tie, boolean qkvBias, boolean outputBias,
                              boolean mlpBias, boolean qkNorm) {
        long[] ends = {0};
        long[] block = {0};
        // each weight has fewer than 2^31 elements (checked above): only the product by the layers may overflow
        embedding(names, vocab, h, (n, shape) -> ends[0] += elements(shape));
        top(names, vocab, h, tie, (n, shape) -> ends[0] += elements(shape));
        block(names, 0, h, heads * headDim, kvHeads * headDim, inner, headDim, qkvBias, outputBias, mlpBias, qkNorm,
                (n, shape) -> block[0] += elements(shape));
        return Memory.plus(ends[0], Memory.times(layers, block[0]));
    }

    private static long elements(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /**
     * Every parameter a model of this config has, by its Hugging Face name with its shape: the embedding, each
     * layer's, the final norm, and the output head unless it is tied to the embedding.
     */
    public void forEachParameter(BiConsumer<String, long[]> visit) {
        FamilyLayout names = family.layout();
        embedding(names, vocabSize, hiddenSize, visit);
        for (int i = 0; i < numHiddenLayers; i++) {
            block(names, i, hiddenSize, (long) numAttentionHeads * headDim, (long) numKeyValueHeads * headDim,
                    intermediateSize, headDim, qkvBias, outputBias, mlpBias, qkNorm, visit);
        }
        top(names, vocabSize, hiddenSize, tieWordEmbeddings, visit);
    }

    private static void embedding(FamilyLayout names, long vocab, long h, BiConsumer<String, long[]> visit) {
        visit.accept(names.embed() + ".weight", new long[] {vocab, h});
    }

    /** Block {@code i}'s parameters: {@code q} and {@code kv} are the widths of the queries and of the keys. */
    private static void block(FamilyLayout names, int i, long h, long q, long kv, long inner, long headDim,
                              boolean qkvBias, boolean outputBias, boolean mlpBias, boolean qkNorm,
                              BiConsumer<String, long[]> visit) {
        String a = names.inLayer(i, names.attention()) + ".";
        String fused = names.projections().fusedQkv();
        if (fused == null) {
            linear(visit, a + "q_proj", q, h, qkvBias);
            linear(visit, a + "k_proj", kv, h, qkvBias);
            linear(visit, a + "v_proj", kv, h, qkvBias);
        } else {
            linear(visit, a + fused, q + 2 * kv, h, qkvBias);
        }
        linear(visit, a + names.projections().output(), h, q, outputBias);
        if (qkNorm) {
            visit.accept(a + "q_norm.weight", new long[] {headDim});
            visit.accept(a + "k_norm.weight", new long[] {headDim});
        }
        String m = names.inLayer(i, names.mlp()) + ".";
        names.feedForward().forEachProjection(h, inner, (p, shape) -> linear(visit, m + p, shape[0], shape[1],
                mlpBias));
        norm(visit, names.inLayer(i, names.inputNorm()), h, names.norm());
        if (!names.parallelBlock()) {
            norm(visit, names.inLayer(i, names.postAttentionNorm()), h, names.norm());
        }
    }

    /**
     * The forward products a training step over {@code rows} token rows (batch × sequence length) spends its time in,
     * for {@link MatmulProbe}: the distinct weight shapes of one block's linear layers, largest three first, and the
     * output head (the same product whether tied or not).
     */
    public List<MatmulProbe.Shape> matmulShapes(long rows) {
        List<long[]> weights = new ArrayList<>();
        FamilyLayout names = family.layout();
        block(names, 0, hiddenSize, (long) numAttentionHeads * headDim, (long) numKeyValueHeads * headDim,
                intermediateSize, headDim, qkvBias, outputBias, mlpBias, qkNorm, (name, shape) -> {
                    if (shape.length == 2 && name.endsWith(".weight")) {
                        weights.add(shape);
                    }
                });
        weights.sort(Comparator.comparingLong((long[] w) -> w[0] * w[1]).reversed());
        LinkedHashSet<MatmulProbe.Shape> shapes = new LinkedHashSet<>();
        for (long[] w : weights) {
            if (shapes.size() < 3) {
                shapes.add(new MatmulProbe.Shape(rows, w[1], w[0]));
            }
        }
        shapes.add(new MatmulProbe.Shape(rows, hiddenSize, vocabSize));
        return List.copyOf(shapes);
    }

    /** The final norm, and the output head unless it is tied to the embedding. */
    private static void top(FamilyLayout names, long vocab, long h, boolean tie, BiConsumer<String, long[]> visit) {
        norm(visit, names.finalNorm(), h, names.norm());
        if (!tie) {
            linear(visit, names.head(), vocab, h, names.headBias());
        }
    }

    /** The output head's weight name (stored only when not tied to the embedding). */
    public String headWeight() {
        return family.layout().head() + ".weight";
    }

    private static void linear(BiConsumer<String, long[]> visit, String name, long out, long in, boolean bias) {
        visit.accept(name + ".weight", new long[] {out, in});
        if (bias) {
            visit.accept(name + ".bias", new long[] {out});
        }
    }

    private static void norm(BiConsumer<String, long[]> visit, String name, long dim, FamilyLayout.Norm kind) {
        visit.accept(name + ".weight", new long[] {dim});
        if (kind.hasBias()) {
            visit.accept(name + ".bias", new long[] {dim});
        }
    }

    private static void tokenId(String field, OptionalInt id, int vocab) {
        if (id.isPresent() && (id.getAsInt() < 0 || id.getAsInt() >= vocab)) {
            throw new CollieException(field + " (" + id.getAsInt() + ") is outside the vocabulary [0, " + vocab + ")");
        }
    }

    /**
     * Reads and validates a {@code config.json} (or the one inside directory {@code configJson}); errors name the file
     * (and line and column for malformed JSON, the field for bad values).
     */
    public static DecoderConfig load(Path configJson) {
        return from(HfConfig.load(configJson));
    }

    /** Parses and validates config.json text; {@code sourceName} (a path, usually) prefixes every error message. */
    public static DecoderConfig fromJson(String json, String sourceName) {
        return from(HfConfig.parse(json, sourceName));
    }

    private static DecoderConfig from(HfConfig f) {
        ModelFamily family = ModelFamily.of(f);
        Builder b = family.hasOwnKeys() ? builder(family) : sharedKeys(f, family);
        family.read(f, b);          // its errors name the file already (HfConfig.bad)
        b.autoMap(f.stringMap("auto_map"));
        try {
            return b.build();
        } catch (CollieException e) {
            throw f.bad(e.getMessage());    // the record's checks, which know no file
        }
    }

    /** The keys the families that follow transformers' LLaMA config share. */
    private static Builder sharedKeys(HfConfig f, ModelFamily family) {
        Builder b = builder().family(family).vocabSize(f.requiredInt("vocab_size"))
                .hiddenSize(f.requiredInt("hidden_size")).intermediateSize(f.requiredInt("intermediate_size"))
                .numHiddenLayers(f.requiredInt("num_hidden_layers"))
                .numAttentionHeads(f.requiredInt("num_attention_heads")).numKeyValueHeads(f.intOr("num_key_value_heads", 0))
                .headDim(f.intOr("head_dim", 0)).rmsNormEps(f.dbl("rms_norm_eps", 1e-6))
                .maxPositionEmbeddings(f.intOr("max_position_embeddings", 2048))
                .tieWordEmbeddings(f.bool("tie_word_embeddings", false)).attentionDropout(f.dbl("attention_dropout", 0.0))
                .hiddenAct(f.string("hidden_act", "silu")).initializerRange(f.dbl("initializer_range", 0.02))
                .bosTokenId(f.optTokenId("bos_token_id")).padTokenId(f.optTokenId("pad_token_id"))
                .eosTokenIds(f.tokenIds("eos_token_id"))
                .dtype(f.string("dtype", f.string("torch_dtype", null)));
        return b.rope(RopeScaling.read(f, b.maxPositionEmbeddings));
    }

    /** This config as its family's config.json text, keys sorted as transformers writes them. */
    public String toJson() {
        ObjectNode o = HfConfig.newObject();
        o.putArray("architectures").add(family.architecture());
        o.put("attention_dropout", attentionDropout);
        HfConfig.putId(o, "bos_token_id", bosTokenId);
        dtype.ifPresent(d -> o.put("dtype", d));
        HfConfig.putIds(o, "eos_token_id", eosTokenIds.stream().mapToInt(Integer::intValue).toArray());
        o.put("head_dim", headDim);
        o.put("hidden_act", hiddenAct);
        o.put("hidden_size", hiddenSize);
        o.put("initializer_range", initializerRange);
        o.put("intermediate_size", intermediateSize);
        o.put("max_position_embeddings", maxPositionEmbeddings);
        o.put("model_type", family.modelType());
        o.put("num_attention_heads", numAttentionHeads);
        o.put("num_hidden_layers", numHiddenLayers);
        o.put("num_key_value_heads", numKeyValueHeads);
        HfConfig.putId(o, "pad_token_id", padTokenId);
        o.put("rms_norm_eps", rmsNormEps);
        rope.write(o);
        o.put("tie_word_embeddings", tieWordEmbeddings);
        dtype.ifPresent(d -> o.put("torch_dtype", d));
        o.put("use_cache", true);
        o.put("vocab_size", vocabSize);
        if (family.hasOwnKeys()) {
            o.removeAll();
        }
        family.write(this, o);
        if (!autoMap.isEmpty()) {
            ObjectNode m = o.putObject("auto_map");
            autoMap.forEach(m::put);
        }
        return HfConfig.sortedText(o);
    }

    /** Writes {@link #toJson()} to {@code dir/config.json} (atomically), creating {@code dir} if needed. */
    public void save(Path dir) {
        AtomicFiles.writeString(dir.resolve("config.json"), toJson());
    }

    /** The rotary inverse frequencies at initialisation ({@link RopeScaling#invFreq}). */
    public double[] ropeInvFreq() {
        return ropeInvFreq(maxPositionEmbeddings);
    }

    /** The rotary inverse frequencies for sequences of length {@code seqLen} (only "dynamic" depends on it). */
    public double[] ropeInvFreq(long seqLen) {
        return rope.invFreq(rotaryDim, maxPositionEmbeddings, seqLen);
    }

    /** Shorthand for {@code rope().theta()}. */
    public double ropeTheta() {
        return rope.theta();
    }

    /** The first EOS id (config.json may list several: Llama 3 instruct's do). */
    public OptionalInt eosTokenId() {
        return eosTokenIds.isEmpty() ? OptionalInt.empty() : OptionalInt.of(eosTokenIds.get(0));
    }

    /** Number of query heads sharing one key/value head. */
    public int numKeyValueGroups() {
        return numAttentionHeads / numKeyValueHeads;
    }

    /** A LLaMA builder with the transformers defaults for everything but the five sizes, which must be set. */
    public static Builder builder() {
        return builder(ModelFamily.LLAMA);
    }

    /** A builder for a model of {@code family} with its defaults (e.g. Qwen2's q/k/v bias); the sizes must be set. */
    public static Builder builder(ModelFamily family) {
        Builder b = new Builder();
        family.defaults(b);
        return b;
    }

    /** A builder holding this config's values. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.family = family;
        b.vocabSize = vocabSize;
        b.hiddenSize = hiddenSize;
        b.intermediateSize = intermediateSize;
        b.numHiddenLayers = numHiddenLayers;
        b.numAttentionHeads = numAttentionHeads;
        b.numKeyValueHeads = numKeyValueHeads;
        b.headDim = headDim;
        // the family's default stays a default, so that a builder given another head_dim derives it again
        b.rotaryDim = rotaryDim == family.rotaryDim(headDim) ? 0 : rotaryDim;
        b.rmsNormEps = rmsNormEps;
        b.rope = rope;
        b.maxPositionEmbeddings = maxPositionEmbeddings;
        b.tieWordEmbeddings = tieWordEmbeddings;
        b.qkvBias = qkvBias;
        b.outputBias = outputBias;
        b.mlpBias = mlpBias;
        b.qkNorm = qkNorm;
        b.slidingWindow = slidingWindow;
        b.layerTypes = layerTypes;
        b.attentionDropout = attentionDropout;
        b.hiddenAct = hiddenAct;
        b.initializerRange = initializerRange;
        b.bosTokenId = bosTokenId;
        b.eosTokenIds = eosTokenIds;
        b.padTokenId = padTokenId;
        b.dtype = dtype;
        b.autoMap = autoMap;
        return b;
    }

    /** Builds a {@link DecoderConfig} in code with transformers' defaults; {@link #build()} validates like {@link #load}. */
    public static final class Builder {
        private ModelFamily family = ModelFamily.LLAMA;
        private int vocabSize;
        private int hiddenSize;
        private int intermediateSize;
        private int numHiddenLayers;
        private int numAttentionHeads;
        private int numKeyValueHeads;
        private int headDim;
        private int rotaryDim;
        private double rmsNormEps = 1e-6;
        private RopeScaling rope = RopeScaling.standard(10000.0);
        private int maxPositionEmbeddings = 2048;
        private boolean tieWordEmbeddings;
        private boolean qkvBias;
        private boolean outputBias;
        private boolean mlpBias;
        private boolean qkNorm;
        private int slidingWindow;
        private List<String> layerTypes = List.of();
        private double attentionDropout;
        private String hiddenAct = "silu";
        private double initializerRange = 0.02;
        private OptionalInt bosTokenId = OptionalInt.empty();
        private List<Integer> eosTokenIds = List.of();
        private OptionalInt padTokenId = OptionalInt.empty();
        private Optional<String> dtype = Optional.empty();
        private Map<String, String> autoMap = Map.of();

        private Builder() {
        }

        public Builder vocabSize(int v) { vocabSize = v; return this; }
        public Builder hiddenSize(int v) { hiddenSize = v; return this; }
        public Builder intermediateSize(int v) { intermediateSize = v; return this; }
        public Builder numHiddenLayers(int v) { numHiddenLayers = v; return this; }
        public Builder numAttentionHeads(int v) { numAttentionHeads = v; return this; }
        /** Default (0): the number of attention heads (no grouped-query attention). */
        public Builder numKeyValueHeads(int v) { numKeyValueHeads = v; return this; }
        /** Default (0): hidden_size / num_attention_heads. */
        public Builder headDim(int v) { headDim = v; return this; }
        /** Default (0): the family's share of each head (all of it; ChatGLM's half). */
        public Builder rotaryDim(int v) { rotaryDim = v; return this; }
        public Builder rmsNormEps(double v) { rmsNormEps = v; return this; }
        public Builder rope(RopeScaling r) { rope = Objects.requireNonNull(r, "rope"); return this; }
        /** Sets the rope base, keeping the rope type and scaling. */
        public Builder ropeTheta(double theta) { rope = rope.withTheta(theta); return this; }
        public Builder maxPositionEmbeddings(int v) { maxPositionEmbeddings = v; return this; }
        public Builder tieWordEmbeddings(boolean v) { tieWordEmbeddings = v; return this; }
        /** The family; its defaults are not applied ({@link DecoderConfig#builder(ModelFamily)} does that). */
        public Builder family(ModelFamily v) { family = Objects.requireNonNull(v, "family"); return this; }
        /** Bias on all four attention projections (LLaMA's attention_bias, InternLM's bias) or on none. */
        public Builder attentionBias(boolean v) { qkvBias = v; outputBias = v; return this; }
        public Builder qkvBias(boolean v) { qkvBias = v; return this; }
        public Builder outputBias(boolean v) { outputBias = v; return this; }
        public Builder qkNorm(boolean v) { qkNorm = v; return this; }
        /** Keys a query of a sliding layer sees, itself included (0: none). */
        public Builder slidingWindow(int v) { slidingWindow = v; return this; }
        /** Per layer "full_attention" or "sliding_attention"; empty: all full. */
        public Builder layerTypes(List<String> v) { layerTypes = List.copyOf(v); return this; }
        int numHiddenLayers() { return numHiddenLayers; }
        public Builder mlpBias(boolean v) { mlpBias = v; return this; }
        public Builder attentionDropout(double v) { attentionDropout = v; return this; }
        public Builder hiddenAct(String v) { hiddenAct = v; return this; }
        public Builder initializerRange(double v) { initializerRange = v; return this; }
        public Builder bosTokenId(Integer id) { bosTokenId = id == null ? OptionalInt.empty() : OptionalInt.of(id); return this; }
        /** One or more EOS ids; none clears them. */
        public Builder eosTokenIds(int... ids) { eosTokenIds = Arrays.stream(ids).boxed().toList(); return this; }
        public Builder padTokenId(Integer id) { padTokenId = id == null ? OptionalInt.empty() : OptionalInt.of(id); return this; }
        /** config.json's {@code auto_map} (remote code's classes), kept as given. */
        public Builder autoMap(Map<String, String> v) { autoMap = Map.copyOf(v); return this; }
        /** Informational weights dtype, e.g. "bfloat16"; null for none. */
        public Builder dtype(String v) { dtype = Optional.ofNullable(v); return this; }

        /** Validates and builds; errors name the field. */
        public DecoderConfig build() {
            return new DecoderConfig(family, vocabSize, hiddenSize, intermediateSize, numHiddenLayers,
                    numAttentionHeads, numKeyValueHeads, headDim, rotaryDim, rmsNormEps, rope, maxPositionEmbeddings,
                    tieWordEmbeddings, qkvBias, outputBias, mlpBias, qkNorm, slidingWindow, layerTypes, attentionDropout,
                    hiddenAct, initializerRange, bosTokenId, eosTokenIds, padTokenId, dtype, autoMap);
        }
    }
}
