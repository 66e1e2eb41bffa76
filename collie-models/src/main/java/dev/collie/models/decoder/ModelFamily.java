package dev.collie.models.decoder;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.io.HfConfig;
import dev.collie.core.nn.RopeScaling;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The model families collie builds, chosen by {@code model_type} in {@code config.json} (or, without one, by
 * {@code architectures}; MOSS's two families, which share both, by the key that names the hidden size). A family is
 * what its config.json says beyond the shared sizes: which projections carry a bias, a per-head q/k norm,
 * sliding-window layers, its own keys, and its {@link FamilyLayout}: the names (and fused projections) its
 * checkpoints use, which the module tree takes over so that load and save are the identity, and its block (LLaMA's,
 * or CodeGen's parallel one).
 */
public enum ModelFamily {
    /** LLaMA 1–3: {@code attention_bias} on q/k/v/o, {@code mlp_bias}. */
    LLAMA("llama", "LlamaForCausalLM"),
    /** Qwen2 and Qwen2.5: bias on q/k/v only; sliding windows on the layers from {@code max_window_layers}. */
    QWEN2("qwen2", "Qwen2ForCausalLM"),
    /** Qwen3: RMSNorm on each query and key head ({@code q_norm}, {@code k_norm}), explicit {@code head_dim}. */
    QWEN3("qwen3", "Qwen3ForCausalLM"),
    /** Mistral: every layer attends over the last {@code sliding_window} positions. */
    MISTRAL("mistral", "MistralForCausalLM"),
    /** InternLM (v1), remote code: bias on q/k/v/o ({@code bias}), multi-head attention, rope base 10000. */
    INTERNLM("internlm", "InternLMForCausalLM"),
    /** InternLM2 (and 2.5), remote code: the LLaMA block with a fused {@code wqkv} and its own names. */
    INTERNLM2("internlm2", "InternLM2ForCausalLM", FamilyLayout.INTERNLM2),
    /**
     * ChatGLM2 and ChatGLM3, remote code: multi-query attention with q/k/v bias, a fused {@code query_key_value}
     * and {@code dense_h_to_4h}, rotary on half of each head in interleaved pairs, and keys of its own.
     */
    CHATGLM("chatglm", "ChatGLMModel", FamilyLayout.CHATGLM),
    /**
     * CodeGen (transformers' {@code codegen}): GPT-J's parallel block with one LayerNorm, {@code qkv_proj} in four
     * groups of queries, values and keys, rotary on the first {@code rotary_dim} dimensions of each head in
     * interleaved pairs, gelu_new, an output head with a bias; keys of its own ({@code n_embd}, {@code n_layer}, ...).
     */
    CODEGEN("codegen", "CodeGenForCausalLM", FamilyLayout.CODEGEN),
    /** MOSS-moon-003 (remote code, model_type {@code moss} with CodeGen's keys): CodeGen's model under MOSS's name. */
    MOSS_MOON("moss", "MossForCausalLM", FamilyLayout.CODEGEN),
    /** MOSS's LLaMA-block base (remote code, model_type {@code moss} with LLaMA's keys): LLaMA under MOSS's name. */
    MOSS("moss", "MossForCausalLM");

    /** The activation of CodeGen's MLP (transformers' {@code gelu_new}: GELU's tanh approximation). */
    private static final String CODEGEN_ACTIVATION = "gelu_new";

    /** ChatGLM's checkpoints hold the rotary frequencies as a tensor; no computation reads it. */
    private static final String CHATGLM_INV_FREQ = "transformer.rotary_pos_emb.inv_freq";

    private final String modelType;
    private final String architecture;
    private final FamilyLayout layout;

    ModelFamily(String modelType, String architecture) {
        this(modelType, architecture, FamilyLayout.LLAMA);
    }

    ModelFamily(String modelType, String architecture, FamilyLayout layout) {
        this.modelType = modelType;
        this.architecture = architecture;
        this.layout = layout;
    }

    /** Where this family keeps each part of the model (module paths = weight names). */
    public FamilyLayout layout() {
        return layout;
    }

    /** The {@code model_type} of config.json. */
    public String modelType() {
        return modelType;
    }

    /** The {@code architectures} entry written to config.json. */
    public String architecture() {
        return architecture;
    }

    /** Every supported {@code model_type}, comma-separated, for error messages. */
    public static String supported() {
        return Arrays.stream(values()).map(ModelFamily::modelType).distinct().collect(Collectors.joining(", "));
    }

    /**
     * The family of a config.json: its {@code model_type}, else its first {@code architectures} entry, else LLaMA
     * (early conversions wrote neither); anything else is refused naming the supported ones. Families that share
     * both (MOSS-moon-003 and MOSS's LLaMA-block base) are told apart by the key that names the hidden size.
     */
    public static ModelFamily of(HfConfig f) {
        String type = f.string("model_type", null);
        if (type != null) {
            List<ModelFamily> named = Arrays.stream(values()).filter(m -> m.modelType.equals(type)).toList();
            if (named.isEmpty()) {
                throw f.bad("model_type \"" + type + "\" is not supported; supported: " + supported());
            }
            return bySizeKey(f, named, "model_type \"" + type + "\"");
        }
        List<String> arch = f.strings("architectures");
        if (arch.isEmpty()) {
            return LLAMA;
        }
        List<ModelFamily> named = Arrays.stream(values()).filter(m -> m.architecture.equals(arch.get(0))).toList();
        if (named.isEmpty()) {
            throw f.bad("architectures [\"" + arch.get(0) + "\"] is not supported (and there is no model_type);"
                    + " supported model types: " + supported());
        }
        return bySizeKey(f, named, "architectures [\"" + arch.get(0) + "\"]");
    }

    /** The one of {@code named} (one family, or MOSS's two) whose key for the hidden size {@code f} has. */
    private static ModelFamily bySizeKey(HfConfig f, List<ModelFamily> named, String what) {
        if (named.size() == 1) {
            return named.get(0);
        }
        for (ModelFamily m : named) {
            if (f.has(m.hiddenSizeKey())) {
                return m;
            }
        }
        throw f.bad(what + " is " + named.stream().map(m -> m.description() + " (" + m.hiddenSizeKey() + ")")
                .collect(Collectors.joining(" or ")) + ", but config.json has none of those keys");
    }

    /** The key of config.json that holds the hidden size: CodeGen's {@code n_embd}, else {@code hidden_size}. */
    private String hiddenSizeKey() {
        return isCodeGen() ? "n_embd" : "hidden_size";
    }

    /** How messages name the family where the model type alone is ambiguous. */
    private String description() {
        return switch (this) {
            case MOSS_MOON -> "MOSS-moon-003 (CodeGen's block)";
            case MOSS -> "MOSS's LLaMA-block base";
            default -> modelType;
        };
    }

    /** Whether the family is CodeGen's model (under its own name or MOSS-moon-003's). */
    private boolean isCodeGen() {
        return layout == FamilyLayout.CODEGEN;
    }

    /** The values of {@code hidden_act} the family's MLP accepts, the family's own first. */
    List<String> activations() {
        return isCodeGen() ? List.of(CODEGEN_ACTIVATION) : List.of("silu", "swish");
    }

    /** The rotary dimensions of a head of {@code headDim} unless config.json says (ChatGLM turns half of each). */
    int rotaryDim(int headDim) {
        return this == CHATGLM ? headDim / 2 : headDim;
    }

    /**
     * The modules LoRA adapts when none are named: peft's defaults for the family ({@code q_proj}, {@code v_proj};
     * ChatGLM's {@code query_key_value}; CodeGen's {@code qkv_proj}), and for InternLM2, which peft has none for,
     * its fused {@code wqkv}.
     */
    public List<String> loraTargets() {
        return switch (this) {
            case INTERNLM2 -> List.of("wqkv");
            case CHATGLM -> List.of("query_key_value");
            case CODEGEN, MOSS_MOON -> List.of("qkv_proj");
            default -> List.of("q_proj", "v_proj");
        };
    }

    /** Whether config.json names even the shared sizes its own way (ChatGLM's num_layers, CodeGen's n_embd, ...). */
    boolean hasOwnKeys() {
        return this == CHATGLM || isCodeGen();
    }

    /**
     * Tensors a checkpoint of this family holds beyond the parameters, as the family's own code computes them
     * (ChatGLM's rotary frequencies): written by a save, skipped by a load.
     */
    Map<String, INDArray> buffers(DecoderConfig c) {
        if (this != CHATGLM) {
            return Map.of();
        }
        // ChatGLM's own plain frequencies over the rotated half, whatever its rope_ratio
        double[] f = RopeScaling.standard(10000.0).invFreq(c.rotaryDim(), c.maxPositionEmbeddings(), 0);
        return Map.of(CHATGLM_INV_FREQ, Nd4j.createFromArray(f).castTo(DataType.FLOAT));
    }

    /** The builder's defaults for a model of this family made in code (Qwen2's q/k/v bias, Qwen3's q/k norm). */
    void defaults(DecoderConfig.Builder b) {
        b.family(this);
        switch (this) {
            case QWEN2 -> b.qkvBias(true);
            case QWEN3 -> b.qkNorm(true);
            case CODEGEN, MOSS_MOON -> b.mlpBias(true).hiddenAct(CODEGEN_ACTIVATION).rmsNormEps(1e-5);
            default -> { }
        }
    }

    /** Reads this family's own keys of {@code f} into {@code b}, which holds the shared ones already. */
    void read(HfConfig f, DecoderConfig.Builder b) {
        switch (this) {
            case LLAMA, MOSS -> b.attentionBias(f.bool("attention_bias", false)).mlpBias(f.bool("mlp_bias", false));
            case QWEN2 -> readWindows(f, b.qkvBias(true));
            case QWEN3 -> readWindows(f, b.attentionBias(f.bool("attention_bias", false)).qkNorm(true)
                    .headDim(f.intOr("head_dim", 128)));
            case MISTRAL -> {
                // absent means transformers' default 4096, null means none
                Integer w = f.has("sliding_window") ? f.optInt("sliding_window") : Integer.valueOf(4096);
                if (w != null) {
                    b.slidingWindow(w).layerTypes(Collections.nCopies(b.numHiddenLayers(),
                            DecoderConfig.SLIDING_ATTENTION));
                }
            }
            case INTERNLM -> {
                b.attentionBias(f.bool("bias", true));
                HfConfig rotary = f.section("rotary");
                if (rotary != null) {
                    String type = rotary.string("type", "origin");
                    if (!type.equals("origin")) {
                        throw f.bad("rotary.type \"" + type + "\" is not supported for InternLM (only \"origin\")");
                    }
                    b.rope(RopeScaling.standard(rotary.dbl("base", 10000.0)));
                } else {
                    b.rope(RopeScaling.standard(10000.0));
                }
            }
            case INTERNLM2 -> b.attentionBias(f.bool("bias", true));
            case CHATGLM -> readChatGlm(f, b);
            case CODEGEN, MOSS_MOON -> readCodeGen(f, b);
        }
    }

    /**
     * CodeGen's config.json (and MOSS-moon-003's, which has its keys); a quantized MOSS (GPTQ's {@code wbits} and
     * {@code groupsize}) and what collie does not build (another activation, dropout outside attention) are refused.
     */
    private static void readCodeGen(HfConfig f, DecoderConfig.Builder b) {
        if (f.has("wbits") || f.has("groupsize")) {
            throw f.bad("wbits " + f.optInt("wbits") + " and groupsize " + f.optInt("groupsize") + " make this a"
                    + " quantized MOSS checkpoint (GPTQ), whose packed integer weights collie cannot load or train;"
                    + " use the float16 model (fnlp/moss-moon-003-sft or -base)");
        }
        String act = f.string("activation_function", CODEGEN_ACTIVATION);
        if (!act.equals(CODEGEN_ACTIVATION)) {
            throw f.bad("activation_function \"" + act + "\" is not supported: CodeGen and MOSS-moon-003 use \""
                    + CODEGEN_ACTIVATION + "\"");
        }
        for (String key : List.of("embd_pdrop", "resid_pdrop")) {
            if (f.dbl(key, 0.0) != 0.0) {
                throw f.bad(key + " (" + f.dbl(key, 0.0) + ") must be 0: collie trains CodeGen without dropout"
                        + " outside attention");
            }
        }
        if (f.has("rotary_dim") && f.optInt("rotary_dim") == null) {
            throw f.bad("rotary_dim is null: CodeGen without rotary embeddings is not supported");
        }
        int hidden = f.requiredInt("n_embd");
        int heads = f.requiredInt("n_head");
        if (heads > 0 && hidden % heads != 0) {
            throw f.bad("n_embd (" + hidden + ") must be divisible by n_head (" + heads + ")");
        }
        Integer inner = f.optInt("n_inner");
        b.vocabSize(f.requiredInt("vocab_size")).hiddenSize(hidden).intermediateSize(inner == null ? 4 * hidden : inner)
                .numHiddenLayers(f.requiredInt("n_layer")).numAttentionHeads(heads)
                .rotaryDim(f.intOr("rotary_dim", 64)).rmsNormEps(f.dbl("layer_norm_epsilon", 1e-5))
                .maxPositionEmbeddings(f.intOr("n_positions", 2048)).tieWordEmbeddings(f.bool("tie_word_embeddings", false))
                .attentionDropout(f.dbl("attn_pdrop", 0.0)).initializerRange(f.dbl("initializer_range", 0.02))
                .rope(RopeScaling.standard(10000.0)).bosTokenId(f.optTokenId("bos_token_id"))
                .eosTokenIds(f.tokenIds("eos_token_id")).padTokenId(f.optTokenId("pad_token_id"))
                .dtype(f.string("dtype", f.string("torch_dtype", null)));
    }

    /** ChatGLM2/3's config.json; what it can say but collie does not build (ChatGLM-6B v1's GLM block) is refused. */
    private static void readChatGlm(HfConfig f, DecoderConfig.Builder b) {
        if (f.has("position_encoding_2d") || f.has("inner_hidden_size")) {
            throw f.bad("this is ChatGLM-6B (v1), whose 2D positions and GELU block collie does not build;"
                    + " ChatGLM2 and ChatGLM3 are supported");
        }
        requireFlag(f, "rmsnorm", true);
        requireFlag(f, "post_layer_norm", true);
        requireFlag(f, "apply_residual_connection_post_layernorm", false);
        requireFlag(f, "original_rope", true);
        int heads = f.requiredInt("num_attention_heads");
        int hidden = f.requiredInt("hidden_size");
        b.vocabSize(f.requiredInt("padded_vocab_size")).hiddenSize(hidden)
                .intermediateSize(f.requiredInt("ffn_hidden_size")).numHiddenLayers(f.requiredInt("num_layers"))
                .numAttentionHeads(heads).headDim(f.intOr("kv_channels", hidden / Math.max(1, heads)))
                .numKeyValueHeads(f.bool("multi_query_attention", false) ? f.intOr("multi_query_group_num", 1) : heads)
                .rmsNormEps(f.dbl("layernorm_epsilon", 1e-5)).maxPositionEmbeddings(f.intOr("seq_length", 2048))
                .tieWordEmbeddings(f.bool("tie_word_embeddings", false)).qkvBias(f.bool("add_qkv_bias", false))
                .outputBias(f.bool("add_bias_linear", false)).mlpBias(f.bool("add_bias_linear", false))
                .attentionDropout(f.dbl("attention_dropout", 0.0))
                .rope(RopeScaling.standard(10000.0 * f.dbl("rope_ratio", 1.0)))
                .bosTokenId(f.optTokenId("bos_token_id")).eosTokenIds(f.tokenIds("eos_token_id"))
                .padTokenId(f.optTokenId("pad_token_id")).dtype(f.string("torch_dtype", null));
    }

    private static void requireFlag(HfConfig f, String key, boolean expected) {
        if (f.has(key) && f.bool(key, expected) != expected) {
            throw f.bad(key + " is " + !expected + ", but ChatGLM2/3 as collie builds it has " + expected);
        }
    }

    /** Qwen's windows: {@code layer_types} when given, else sliding from {@code max_window_layers} on. */
    private static void readWindows(HfConfig f, DecoderConfig.Builder b) {
        if (!f.bool("use_sliding_window", false)) {
            List<String> types = f.strings("layer_types");
            if (types.contains(DecoderConfig.SLIDING_ATTENTION)) {
                throw f.bad("layer_types has \"sliding_attention\" layers but use_sliding_window is false");
            }
            return;
        }
        int window = f.intOr("sliding_window", 4096);
        List<String> types = f.strings("layer_types");
        if (types.isEmpty()) {
            int from = f.intOr("max_window_layers", 28);
            types = new java.util.ArrayList<>();
            for (int i = 0; i < b.numHiddenLayers(); i++) {
                types.add(i >= from ? DecoderConfig.SLIDING_ATTENTION : DecoderConfig.FULL_ATTENTION);
            }
        }
        b.slidingWindow(window).layerTypes(types);
    }

    /** Writes this family's own keys of {@code c} (the shared ones are written by {@link DecoderConfig#toJson}). */
    void write(DecoderConfig c, ObjectNode o) {
        switch (this) {
            case LLAMA, MOSS -> {
                o.put("attention_bias", c.qkvBias());
                o.put("mlp_bias", c.mlpBias());
                o.put("pretraining_tp", 1);
            }
            case QWEN2, QWEN3 -> {
                if (this == QWEN3) {
                    o.put("attention_bias", c.qkvBias());
                }
                boolean sliding = c.layerTypes().contains(DecoderConfig.SLIDING_ATTENTION);
                o.put("use_sliding_window", sliding);
                if (sliding) {
                    o.put("sliding_window", c.slidingWindow());
                } else {
                    o.putNull("sliding_window");
                }
                int first = c.layerTypes().indexOf(DecoderConfig.SLIDING_ATTENTION);
                o.put("max_window_layers", first < 0 ? c.numHiddenLayers() : first);
                ArrayNode types = o.putArray("layer_types");
                for (int i = 0; i < c.numHiddenLayers(); i++) {
                    types.add(c.attentionWindow(i) > 0 ? DecoderConfig.SLIDING_ATTENTION : DecoderConfig.FULL_ATTENTION);
                }
            }
            case MISTRAL -> {
                if (c.slidingWindow() > 0) {
                    o.put("sliding_window", c.slidingWindow());
                } else {
                    o.putNull("sliding_window");
                }
            }
            case INTERNLM -> {
                o.put("bias", c.qkvBias());
                o.remove("num_key_value_heads");
                o.remove("head_dim");
                o.putObject("rotary").put("base", c.ropeTheta()).put("type", "origin");
            }
            case CHATGLM -> writeChatGlm(c, o);
            case CODEGEN, MOSS_MOON -> writeCodeGen(c, o);
            case INTERNLM2 -> {
                // the remote code reads rope_theta and rope_scaling {type, factor}
                o.put("bias", c.qkvBias());
                o.remove("rope_parameters");
                o.remove("head_dim");
                if (c.rope().type().equals("default")) {
                    o.putNull("rope_scaling");
                } else {
                    o.putObject("rope_scaling").put("type", c.rope().type()).put("factor", c.rope().factor());
                }
            }
        }
    }

    /** ChatGLM3's config.json keys, as it ships them (for its remote code). */
    private static void writeChatGlm(DecoderConfig c, ObjectNode o) {
        o.putArray("architectures").add(CHATGLM.architecture);
        o.put("add_bias_linear", c.outputBias());
        o.put("add_qkv_bias", c.qkvBias());
        o.put("apply_query_key_layer_scaling", true);
        o.put("apply_residual_connection_post_layernorm", false);
        o.put("attention_dropout", c.attentionDropout());
        o.put("attention_softmax_in_fp32", true);
        o.put("bias_dropout_fusion", true);
        HfConfig.putIds(o, "eos_token_id", c.eosTokenIds().stream().mapToInt(Integer::intValue).toArray());
        o.put("ffn_hidden_size", c.intermediateSize());
        o.put("fp32_residual_connection", false);
        o.put("hidden_dropout", 0.0);
        o.put("hidden_size", c.hiddenSize());
        o.put("kv_channels", c.headDim());
        o.put("layernorm_epsilon", c.rmsNormEps());
        o.put("model_type", CHATGLM.modelType);
        o.put("multi_query_attention", c.numKeyValueHeads() != c.numAttentionHeads());
        o.put("multi_query_group_num", c.numKeyValueHeads());
        o.put("num_attention_heads", c.numAttentionHeads());
        o.put("num_layers", c.numHiddenLayers());
        o.put("original_rope", true);
        HfConfig.putId(o, "pad_token_id", c.padTokenId());
        c.bosTokenId().ifPresent(id -> o.put("bos_token_id", id));
        o.put("padded_vocab_size", c.vocabSize());
        o.put("post_layer_norm", true);
        o.put("rmsnorm", true);
        o.put("rope_ratio", c.ropeTheta() / 10000.0);
        o.put("seq_length", c.maxPositionEmbeddings());
        o.put("tie_word_embeddings", c.tieWordEmbeddings());
        c.dtype().ifPresent(d -> o.put("torch_dtype", d));
        o.put("use_cache", true);
    }

    /** CodeGen's config.json keys, as transformers writes them (MOSS-moon-003's are the same under its name). */
    private void writeCodeGen(DecoderConfig c, ObjectNode o) {
        o.putArray("architectures").add(architecture);
        o.put("activation_function", CODEGEN_ACTIVATION);
        o.put("attn_pdrop", c.attentionDropout());
        HfConfig.putId(o, "bos_token_id", c.bosTokenId());
        c.dtype().ifPresent(d -> o.put("dtype", d).put("torch_dtype", d));
        o.put("embd_pdrop", 0.0);
        HfConfig.putIds(o, "eos_token_id", c.eosTokenIds().stream().mapToInt(Integer::intValue).toArray());
        o.put("initializer_range", c.initializerRange());
        o.put("layer_norm_epsilon", c.rmsNormEps());
        o.put("model_type", modelType);
        o.put("n_ctx", c.maxPositionEmbeddings());
        o.put("n_embd", c.hiddenSize());
        o.put("n_head", c.numAttentionHeads());
        if (c.intermediateSize() == 4 * c.hiddenSize()) {
            o.putNull("n_inner");
        } else {
            o.put("n_inner", c.intermediateSize());
        }
        o.put("n_layer", c.numHiddenLayers());
        o.put("n_positions", c.maxPositionEmbeddings());
        c.padTokenId().ifPresent(id -> o.put("pad_token_id", id));
        o.put("resid_pdrop", 0.0);
        o.put("rotary_dim", c.rotaryDim());
        o.put("tie_word_embeddings", c.tieWordEmbeddings());
        o.put("use_cache", true);
        o.put("vocab_size", c.vocabSize());
    }

    /**
     * Refuses what this family cannot express (the model would be saved as something else than it trained as);
     * called by {@link DecoderConfig}'s constructor with its values.
     */
    void validate(boolean qkvBias, boolean outputBias, boolean mlpBias, boolean qkNorm, List<String> layerTypes,
                  int heads, int kvHeads, int headDim, int rotaryDim, boolean headsFillHidden, RopeScaling rope,
                  boolean tie) {
        String name = "a " + modelType + " model";
        if (qkNorm != (this == QWEN3)) {
            throw new CollieException(qkNorm ? "q/k norms are Qwen3's (model_type qwen3), not " + modelType + "'s"
                    : name + " has q_norm and k_norm");
        }
        if (this == QWEN2 && (!qkvBias || outputBias)) {
            throw new CollieException(name + " has a bias on q_proj, k_proj and v_proj and none on o_proj");
        }
        if (this != QWEN2 && this != CHATGLM && qkvBias != outputBias) {
            throw new CollieException(name + " has a bias on all four attention projections or on none");
        }
        boolean llama = this == LLAMA || this == MOSS;
        if (!llama && this != CHATGLM && !isCodeGen() && mlpBias) {
            throw new CollieException(name + " has no bias in its MLP (mlp_bias is LLaMA's)");
        }
        boolean anySliding = layerTypes.contains(DecoderConfig.SLIDING_ATTENTION);
        if (anySliding && (llama || this == INTERNLM || this == INTERNLM2 || this == CHATGLM || isCodeGen())) {
            throw new CollieException(name + " has no sliding-window attention");
        }
        if (this == MISTRAL && anySliding && layerTypes.contains(DecoderConfig.FULL_ATTENTION)) {
            throw new CollieException(name + " applies its sliding window to every layer or none");
        }
        if (this == INTERNLM2 && !(rope.type().equals("default") || rope.type().equals("linear")
                || rope.type().equals("dynamic"))) {
            throw new CollieException(name + " has linear or dynamic rope scaling, not " + rope.type());
        }
        if (this == INTERNLM2 && !headsFillHidden) {
            throw new CollieException(name + " has head_dim = hidden_size / num_attention_heads");
        }
        if (this == CHATGLM && (!rope.type().equals("default") || headDim % 4 != 0 || rotaryDim != headDim / 2
                || outputBias != mlpBias)) {
            throw new CollieException(name + " has plain rotary embeddings on half of each head (kv_channels "
                    + headDim + " must be divisible by 4) and add_bias_linear on dense and the MLP alike");
        }
        if (this == INTERNLM) {
            if (kvHeads != heads) {
                throw new CollieException(name + " has multi-head attention: num_key_value_heads (" + kvHeads
                        + ") must equal num_attention_heads (" + heads + ")");
            }
            if (!rope.type().equals("default") || !headsFillHidden) {
                throw new CollieException(name + " has plain rotary embeddings and head_dim = hidden_size / heads");
            }
        }
        if (isCodeGen()) {
            validateCodeGen(name, qkvBias, mlpBias, heads, kvHeads, headDim, rotaryDim, headsFillHidden, rope, tie);
        } else if (this != CHATGLM && rotaryDim != headDim) {
            throw new CollieException(name + " turns the whole of each head: its rotary dimensions (" + rotaryDim
                    + ") are head_dim (" + headDim + ")");
        }
    }

    /** What CodeGen's code fixes (MOSS-moon-003's copy too), in its config's names. */
    private static void validateCodeGen(String name, boolean qkvBias, boolean mlpBias, int heads, int kvHeads,
                                        int headDim, int rotaryDim, boolean headsFillHidden, RopeScaling rope,
                                        boolean tie) {
        if (qkvBias || !mlpBias) {
            throw new CollieException(name + " has no bias on qkv_proj and out_proj and one on fc_in and fc_out");
        }
        if (kvHeads != heads || !headsFillHidden) {
            throw new CollieException(name + " has multi-head attention over heads of n_embd / n_head");
        }
        if (heads % FamilyLayout.CODEGEN_QKV_GROUPS != 0) {
            throw new CollieException("n_head (" + heads + ") must be divisible by mp_num ("
                    + FamilyLayout.CODEGEN_QKV_GROUPS + "), the number of groups " + name + " lays qkv_proj out in");
        }
        if (rotaryDim <= 0 || rotaryDim % 2 != 0 || rotaryDim > headDim) {
            throw new CollieException("rotary_dim (" + rotaryDim + ") must be even, positive and at most the head"
                    + " size n_embd / n_head (" + headDim + ")");
        }
        if (!rope.equals(RopeScaling.standard(10000.0))) {
            throw new CollieException(name + " has plain rotary embeddings of base 10000, not " + rope.type()
                    + " with base " + rope.theta());
        }
        if (tie) {
            throw new CollieException(name + "'s lm_head has a weight and a bias of its own:"
                    + " tie_word_embeddings must be false");
        }
    }
}
