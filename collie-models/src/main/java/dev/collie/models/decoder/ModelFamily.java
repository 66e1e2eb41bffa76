package dev.collie.models.decoder;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.io.HfConfig;
import dev.collie.core.nn.RopeScaling;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The model families built on the LLaMA block, chosen by {@code model_type} in {@code config.json} (or, without
 * one, by {@code architectures}). A family is what its config.json says beyond the shared sizes: which projections
 * carry a bias, a per-head q/k norm, sliding-window layers, its own keys, and its {@link FamilyLayout}: the names
 * (and fused projections) its checkpoints use, which the module tree takes over so that load and save are the
 * identity.
 */
public enum ModelFamily {
    /** LLaMA 1–3 (and MOSS's LLaMA-block base): {@code attention_bias} on q/k/v/o, {@code mlp_bias}. */
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
    INTERNLM2("internlm2", "InternLM2ForCausalLM", FamilyLayout.INTERNLM2);

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
        return Arrays.stream(values()).map(ModelFamily::modelType).collect(Collectors.joining(", "));
    }

    /**
     * The family of a config.json: its {@code model_type}, else its first {@code architectures} entry, else LLaMA
     * (early conversions wrote neither); anything else is refused naming the supported ones.
     */
    public static ModelFamily of(HfConfig f) {
        String type = f.string("model_type", null);
        if (type != null) {
            for (ModelFamily m : values()) {
                if (m.modelType.equals(type)) {
                    return m;
                }
            }
            throw f.bad("model_type \"" + type + "\" is not supported; supported: " + supported());
        }
        List<String> arch = f.strings("architectures");
        if (arch.isEmpty()) {
            return LLAMA;
        }
        for (ModelFamily m : values()) {
            if (m.architecture.equals(arch.get(0))) {
                return m;
            }
        }
        throw f.bad("architectures [\"" + arch.get(0) + "\"] is not supported (and there is no model_type);"
                + " supported model types: " + supported());
    }

    /** The builder's defaults for a model of this family made in code (Qwen2's q/k/v bias, Qwen3's q/k norm). */
    void defaults(DecoderConfig.Builder b) {
        b.family(this);
        switch (this) {
            case QWEN2 -> b.qkvBias(true);
            case QWEN3 -> b.qkNorm(true);
            default -> { }
        }
    }

    /** Reads this family's own keys of {@code f} into {@code b}, which holds the shared ones already. */
    void read(HfConfig f, DecoderConfig.Builder b) {
        switch (this) {
            case LLAMA -> b.attentionBias(f.bool("attention_bias", false)).mlpBias(f.bool("mlp_bias", false));
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
            case LLAMA -> {
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

    /**
     * Refuses what this family cannot express (the model would be saved as something else than it trained as);
     * called by {@link DecoderConfig}'s constructor with its values.
     */
    void validate(boolean qkvBias, boolean outputBias, boolean mlpBias, boolean qkNorm, List<String> layerTypes,
                  int heads, int kvHeads, boolean headsFillHidden, RopeScaling rope) {
        String name = "a " + modelType + " model";
        if (qkNorm != (this == QWEN3)) {
            throw new CollieException(qkNorm ? "q/k norms are Qwen3's (model_type qwen3), not " + modelType + "'s"
                    : name + " has q_norm and k_norm");
        }
        if (this == QWEN2 && (!qkvBias || outputBias)) {
            throw new CollieException(name + " has a bias on q_proj, k_proj and v_proj and none on o_proj");
        }
        if (this != QWEN2 && qkvBias != outputBias) {
            throw new CollieException(name + " has a bias on all four attention projections or on none");
        }
        if (this != LLAMA && mlpBias) {
            throw new CollieException(name + " has no bias in its MLP (mlp_bias is LLaMA's)");
        }
        boolean anySliding = layerTypes.contains(DecoderConfig.SLIDING_ATTENTION);
        if (anySliding && (this == LLAMA || this == INTERNLM || this == INTERNLM2)) {
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
        if (this == INTERNLM) {
            if (kvHeads != heads) {
                throw new CollieException(name + " has multi-head attention: num_key_value_heads (" + kvHeads
                        + ") must equal num_attention_heads (" + heads + ")");
            }
            if (!rope.type().equals("default") || !headsFillHidden) {
                throw new CollieException(name + " has plain rotary embeddings and head_dim = hidden_size / heads");
            }
        }
    }
}
