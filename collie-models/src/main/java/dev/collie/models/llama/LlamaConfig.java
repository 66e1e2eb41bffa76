package dev.collie.models.llama;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.io.AtomicFiles;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * The hyper-parameters of a LLaMA model, as in a Hugging Face {@code config.json}. Immutable and validated.
 *
 * <p>Reads both layouts: transformers 4.x ({@code rope_theta} and {@code rope_scaling} at the top level,
 * {@code torch_dtype}) and transformers 5.x ({@code rope_parameters} holding {@code rope_type}, {@code rope_theta}
 * and the scaling fields, {@code dtype}). {@link #toJson()} writes the 5.x layout plus the top-level 4.x rope
 * fields, so that both versions load it unchanged. Unknown fields are ignored.
 */
public final class LlamaConfig {

    /** The {@code architectures} entry written to config.json. */
    public static final String ARCHITECTURE = "LlamaForCausalLM";
    /** The only accepted {@code model_type}. */
    public static final String MODEL_TYPE = "llama";
    /** The rope types understood: HF's default, linear (position interpolation), dynamic NTK and Llama 3.1. */
    public static final Set<String> ROPE_TYPES = Set.of("default", "linear", "dynamic", "llama3");

    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    /**
     * Rotary position embedding parameters.
     *
     * @param type one of {@link #ROPE_TYPES}
     * @param theta the base wavelength ({@code rope_theta})
     * @param factor the scaling factor (1 for "default")
     * @param lowFreqFactor llama3 only (else 0)
     * @param highFreqFactor llama3 only (else 0)
     * @param originalMaxPositionEmbeddings llama3 only: the pre-training context length (else 0)
     */
    public record Rope(String type, double theta, double factor, double lowFreqFactor, double highFreqFactor,
                       int originalMaxPositionEmbeddings) {

        /** Plain RoPE with base {@code theta}. */
        public static Rope standard(double theta) {
            return new Rope("default", theta, 1.0, 0, 0, 0);
        }

        /** Linear scaling (position interpolation): frequencies divided by {@code factor}. */
        public static Rope linear(double theta, double factor) {
            return new Rope("linear", theta, factor, 0, 0, 0);
        }

        /** Dynamic NTK scaling: the base grows once the sequence is longer than max_position_embeddings. */
        public static Rope dynamic(double theta, double factor) {
            return new Rope("dynamic", theta, factor, 0, 0, 0);
        }

        /** Llama 3.1 scaling. */
        public static Rope llama3(double theta, double factor, double lowFreqFactor, double highFreqFactor,
                                  int originalMaxPositionEmbeddings) {
            return new Rope("llama3", theta, factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings);
        }
    }

    private final int vocabSize;
    private final int hiddenSize;
    private final int intermediateSize;
    private final int numHiddenLayers;
    private final int numAttentionHeads;
    private final int numKeyValueHeads;
    private final int headDim;
    private final double rmsNormEps;
    private final Rope rope;
    private final int maxPositionEmbeddings;
    private final boolean tieWordEmbeddings;
    private final boolean attentionBias;
    private final boolean mlpBias;
    private final double attentionDropout;
    private final String hiddenAct;
    private final double initializerRange;
    private final Integer bosTokenId;
    private final int[] eosTokenIds;
    private final Integer padTokenId;
    private final String dtype;

    private LlamaConfig(Builder b, String source) {
        this.vocabSize = b.vocabSize;
        this.hiddenSize = b.hiddenSize;
        this.intermediateSize = b.intermediateSize;
        this.numHiddenLayers = b.numHiddenLayers;
        this.numAttentionHeads = b.numAttentionHeads;
        this.numKeyValueHeads = b.numKeyValueHeads != null ? b.numKeyValueHeads : b.numAttentionHeads;
        boolean explicitHeadDim = b.headDim != null;
        this.rmsNormEps = b.rmsNormEps;
        this.rope = b.rope;
        this.maxPositionEmbeddings = b.maxPositionEmbeddings;
        this.tieWordEmbeddings = b.tieWordEmbeddings;
        this.attentionBias = b.attentionBias;
        this.mlpBias = b.mlpBias;
        this.attentionDropout = b.attentionDropout;
        this.hiddenAct = b.hiddenAct;
        this.initializerRange = b.initializerRange;
        this.bosTokenId = b.bosTokenId;
        this.eosTokenIds = b.eosTokenIds.clone();
        this.padTokenId = b.padTokenId;
        this.dtype = b.dtype;

        // validation, in the order a reader of config.json would want to hear about problems
        positive(source, "vocab_size", vocabSize);
        positive(source, "hidden_size", hiddenSize);
        positive(source, "intermediate_size", intermediateSize);
        positive(source, "num_hidden_layers", numHiddenLayers);
        positive(source, "num_attention_heads", numAttentionHeads);
        positive(source, "num_key_value_heads", numKeyValueHeads);
        if (numAttentionHeads % numKeyValueHeads != 0) {
            throw bad(source, "num_attention_heads (" + numAttentionHeads
                    + ") must be divisible by num_key_value_heads (" + numKeyValueHeads + ")");
        }
        if (explicitHeadDim) {
            this.headDim = b.headDim;
            positive(source, "head_dim", headDim);
        } else {
            if (hiddenSize % numAttentionHeads != 0) {
                throw bad(source, "hidden_size (" + hiddenSize + ") must be divisible by num_attention_heads ("
                        + numAttentionHeads + "), or head_dim must be given");
            }
            this.headDim = hiddenSize / numAttentionHeads;
        }
        if (headDim % 2 != 0) {
            throw bad(source, "head_dim (" + headDim + ") must be even for rotary embeddings");
        }
        if (!(rmsNormEps > 0) || Double.isInfinite(rmsNormEps)) {
            throw bad(source, "rms_norm_eps (" + rmsNormEps + ") must be positive");
        }
        positive(source, "max_position_embeddings", maxPositionEmbeddings);
        if (!(attentionDropout >= 0 && attentionDropout < 1)) {
            throw bad(source, "attention_dropout (" + attentionDropout + ") must be in [0, 1)");
        }
        if (!(initializerRange >= 0) || Double.isInfinite(initializerRange)) {
            throw bad(source, "initializer_range (" + initializerRange + ") must be non-negative");
        }
        if (hiddenAct == null || !(hiddenAct.equals("silu") || hiddenAct.equals("swish"))) {
            throw bad(source, "hidden_act \"" + hiddenAct + "\" is not supported: LLaMA uses \"silu\"");
        }
        tokenId(source, "bos_token_id", bosTokenId);
        for (int e : eosTokenIds) {
            tokenId(source, "eos_token_id", e);
        }
        tokenId(source, "pad_token_id", padTokenId);
        validateRope(source, b.ropeField);
    }

    private void validateRope(String source, String field) {
        if (rope == null) {
            throw bad(source, field + " is missing");
        }
        if (!ROPE_TYPES.contains(rope.type())) {
            throw bad(source, field + ".rope_type \"" + rope.type() + "\" is not supported (supported: "
                    + String.join(", ", new java.util.TreeSet<>(ROPE_TYPES)) + ")");
        }
        if (!(rope.theta() > 0) || Double.isInfinite(rope.theta())) {
            throw bad(source, thetaField(field) + " (" + rope.theta() + ") must be positive");
        }
        if (!rope.type().equals("default") && (!(rope.factor() > 0) || Double.isInfinite(rope.factor()))) {
            throw bad(source, field + ".factor (" + rope.factor() + ") must be positive for rope_type \""
                    + rope.type() + "\"");
        }
        if (rope.type().equals("llama3")) {
            if (!(rope.lowFreqFactor() > 0)) {
                throw bad(source, field + ".low_freq_factor (" + rope.lowFreqFactor() + ") must be positive");
            }
            if (!(rope.highFreqFactor() > rope.lowFreqFactor())) {
                throw bad(source, field + ".high_freq_factor (" + rope.highFreqFactor()
                        + ") must be greater than low_freq_factor (" + rope.lowFreqFactor() + ")");
            }
            if (rope.originalMaxPositionEmbeddings() <= 0) {
                throw bad(source, field + ".original_max_position_embeddings ("
                        + rope.originalMaxPositionEmbeddings() + ") must be positive");
            }
        }
    }

    private static String thetaField(String field) {
        return field.equals("rope_parameters") ? "rope_parameters.rope_theta" : "rope_theta";
    }

    private void tokenId(String source, String field, Integer id) {
        if (id != null && (id < 0 || id >= vocabSize)) {
            throw bad(source, field + " (" + id + ") is outside the vocabulary [0, " + vocabSize + ")");
        }
    }

    private static void positive(String source, String field, int v) {
        if (v <= 0) {
            throw bad(source, field + " (" + v + ") must be positive");
        }
    }

    private static CollieException bad(String source, String msg) {
        return new CollieException(source + ": " + msg);
    }

    // ------------------------------------------------------------------------------------------- reading

    /**
     * Reads and validates a {@code config.json} (or the {@code config.json} inside directory {@code configJson}).
     *
     * @throws CollieException naming the file (and line/column for malformed JSON, the field for bad values)
     */
    public static LlamaConfig load(Path configJson) {
        Path file = Files.isDirectory(configJson) ? configJson.resolve("config.json") : configJson;
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new CollieException(file + ": no such file (a Hugging Face model directory has a config.json)", e);
        } catch (AccessDeniedException e) {
            throw new CollieException(file + ": permission denied", e);
        } catch (IOException e) {
            throw new CollieException(file + ": cannot read: " + e, e);
        }
        return fromJson(text, file.toString());
    }

    /**
     * Parses and validates config.json text; {@code sourceName} (a path, usually) prefixes every error message.
     */
    public static LlamaConfig fromJson(String json, String sourceName) {
        String src = sourceName == null ? "config.json" : sourceName;
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            JsonLocation loc = e.getLocation();
            String where = loc == null ? "" : " at line " + loc.getLineNr() + ", column " + loc.getColumnNr();
            throw new CollieException(src + ": malformed JSON" + where + ": " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new CollieException(src + ": expected a JSON object");
        }
        Reader r = new Reader(src);
        String modelType = r.string(root, "model_type", null);
        if (modelType != null && !modelType.equals(MODEL_TYPE)) {
            throw bad(src, "model_type is \"" + modelType + "\", but only \"llama\" is supported");
        }
        Builder b = new Builder();
        b.vocabSize = r.requiredInt(root, "vocab_size");
        b.hiddenSize = r.requiredInt(root, "hidden_size");
        b.intermediateSize = r.requiredInt(root, "intermediate_size");
        b.numHiddenLayers = r.requiredInt(root, "num_hidden_layers");
        b.numAttentionHeads = r.requiredInt(root, "num_attention_heads");
        b.numKeyValueHeads = r.optInt(root, "num_key_value_heads");
        b.headDim = r.optInt(root, "head_dim");
        b.rmsNormEps = r.dbl(root, "rms_norm_eps", 1e-6);
        b.maxPositionEmbeddings = r.intOr(root, "max_position_embeddings", 2048);
        b.tieWordEmbeddings = r.bool(root, "tie_word_embeddings", false);
        b.attentionBias = r.bool(root, "attention_bias", false);
        b.mlpBias = r.bool(root, "mlp_bias", false);
        b.attentionDropout = r.dbl(root, "attention_dropout", 0.0);
        b.hiddenAct = r.string(root, "hidden_act", "silu");
        b.initializerRange = r.dbl(root, "initializer_range", 0.02);
        b.bosTokenId = r.optTokenId(root, "bos_token_id");
        b.padTokenId = r.optTokenId(root, "pad_token_id");
        b.eosTokenIds = r.tokenIds(root, "eos_token_id");
        String dt = r.string(root, "dtype", null);
        b.dtype = dt != null ? dt : r.string(root, "torch_dtype", null);
        readRope(r, root, b);
        return new LlamaConfig(b, src);
    }

    private static void readRope(Reader r, JsonNode root, Builder b) {
        JsonNode params = root.get("rope_parameters");
        JsonNode rp;
        String field;
        double theta;
        if (params != null && !params.isNull()) {
            if (!params.isObject()) {
                throw bad(r.src, "rope_parameters must be a JSON object, got " + params);
            }
            rp = params;
            field = "rope_parameters";
            Double t = r.optDbl(rp, "rope_theta", field + ".");
            theta = t != null ? t : r.dbl(root, "rope_theta", 10000.0);
        } else {
            theta = r.dbl(root, "rope_theta", 10000.0);
            JsonNode scaling = root.get("rope_scaling");
            field = "rope_scaling";
            if (scaling == null || scaling.isNull()) {
                b.rope = Rope.standard(theta);
                b.ropeField = field;
                return;
            }
            if (!scaling.isObject()) {
                throw bad(r.src, "rope_scaling must be a JSON object or null, got " + scaling);
            }
            rp = scaling;
        }
        String p = field + ".";
        String type = r.string(rp, "rope_type", null, p);
        if (type == null) {
            type = r.string(rp, "type", "default", p);
        }
        b.ropeField = field;
        switch (type) {
            case "default":
                b.rope = Rope.standard(theta);
                break;
            case "linear":
                b.rope = Rope.linear(theta, r.requiredDbl(rp, "factor", p));
                break;
            case "dynamic":
                b.rope = Rope.dynamic(theta, r.requiredDbl(rp, "factor", p));
                break;
            case "llama3": {
                Integer orig = r.optInt(rp, "original_max_position_embeddings", p);
                b.rope = Rope.llama3(theta, r.requiredDbl(rp, "factor", p), r.requiredDbl(rp, "low_freq_factor", p),
                        r.requiredDbl(rp, "high_freq_factor", p), orig != null ? orig : b.maxPositionEmbeddings);
                break;
            }
            default:
                b.rope = new Rope(type, theta, 1.0, 0, 0, 0);
                // rejected with the field name by validateRope
        }
    }

    /** Typed access to JSON fields with error messages that name the source and the field. */
    private static final class Reader {
        final String src;

        Reader(String src) {
            this.src = src;
        }

        private JsonNode get(JsonNode obj, String key) {
            JsonNode v = obj.get(key);
            return v == null || v.isNull() ? null : v;
        }

        int requiredInt(JsonNode obj, String key) {
            Integer v = optInt(obj, key);
            if (v == null) {
                throw bad(src, "missing required field " + key);
            }
            return v;
        }

        int intOr(JsonNode obj, String key, int def) {
            Integer v = optInt(obj, key);
            return v != null ? v : def;
        }

        Integer optInt(JsonNode obj, String key) {
            return optInt(obj, key, "");
        }

        Integer optInt(JsonNode obj, String key, String prefix) {
            JsonNode v = get(obj, key);
            if (v == null) {
                return null;
            }
            if (v.isIntegralNumber() && v.canConvertToInt()) {
                return v.intValue();
            }
            if (v.isFloatingPointNumber() && v.doubleValue() == Math.rint(v.doubleValue())
                    && Math.abs(v.doubleValue()) <= Integer.MAX_VALUE) {
                return (int) v.doubleValue();
            }
            throw bad(src, prefix + key + " must be an integer, got " + v);
        }

        Integer optTokenId(JsonNode obj, String key) {
            JsonNode v = get(obj, key);
            if (v != null && v.isArray()) {
                throw bad(src, key + " must be a single integer, got " + v);
            }
            Integer id = optInt(obj, key);
            // early LLaMA conversions wrote -1 for "no such token"
            return id != null && id < 0 ? null : id;
        }

        int[] tokenIds(JsonNode obj, String key) {
            JsonNode v = get(obj, key);
            if (v == null) {
                return new int[0];
            }
            if (v.isArray()) {
                int[] out = new int[v.size()];
                for (int i = 0; i < out.length; i++) {
                    JsonNode e = v.get(i);
                    if (!e.isIntegralNumber() || !e.canConvertToInt()) {
                        throw bad(src, key + " must be an integer or a list of integers, got " + v);
                    }
                    out[i] = e.intValue();
                }
                return out;
            }
            Integer id = optInt(obj, key);
            return id == null || id < 0 ? new int[0] : new int[] {id};
        }

        double dbl(JsonNode obj, String key, double def) {
            Double v = optDbl(obj, key, "");
            return v != null ? v : def;
        }

        double requiredDbl(JsonNode obj, String key, String prefix) {
            Double v = optDbl(obj, key, prefix);
            if (v == null) {
                throw bad(src, "missing required field " + prefix + key);
            }
            return v;
        }

        Double optDbl(JsonNode obj, String key, String prefix) {
            JsonNode v = get(obj, key);
            if (v == null) {
                return null;
            }
            if (!v.isNumber()) {
                throw bad(src, prefix + key + " must be a number, got " + v);
            }
            return v.doubleValue();
        }

        boolean bool(JsonNode obj, String key, boolean def) {
            JsonNode v = get(obj, key);
            if (v == null) {
                return def;
            }
            if (!v.isBoolean()) {
                throw bad(src, key + " must be true or false, got " + v);
            }
            return v.booleanValue();
        }

        String string(JsonNode obj, String key, String def) {
            return string(obj, key, def, "");
        }

        String string(JsonNode obj, String key, String def, String prefix) {
            JsonNode v = get(obj, key);
            if (v == null) {
                return def;
            }
            if (!v.isTextual()) {
                throw bad(src, prefix + key + " must be a string, got " + v);
            }
            return v.asText();
        }
    }

    // ------------------------------------------------------------------------------------------- writing

    /**
     * This config as config.json text in the transformers 5 layout ({@code rope_parameters}, {@code dtype}), plus
     * the top-level {@code rope_theta}, {@code rope_scaling} and {@code torch_dtype} that transformers 4.x reads.
     * Keys are sorted, as transformers writes them.
     */
    public String toJson() {
        ObjectNode o = JSON.createObjectNode();
        o.putArray("architectures").add(ARCHITECTURE);
        o.put("attention_bias", attentionBias);
        o.put("attention_dropout", attentionDropout);
        putId(o, "bos_token_id", bosTokenId);
        if (dtype != null) {
            o.put("dtype", dtype);
        }
        if (eosTokenIds.length == 0) {
            o.putNull("eos_token_id");
        } else if (eosTokenIds.length == 1) {
            o.put("eos_token_id", eosTokenIds[0]);
        } else {
            ArrayNode a = o.putArray("eos_token_id");
            for (int e : eosTokenIds) {
                a.add(e);
            }
        }
        o.put("head_dim", headDim);
        o.put("hidden_act", hiddenAct);
        o.put("hidden_size", hiddenSize);
        o.put("initializer_range", initializerRange);
        o.put("intermediate_size", intermediateSize);
        o.put("max_position_embeddings", maxPositionEmbeddings);
        o.put("mlp_bias", mlpBias);
        o.put("model_type", MODEL_TYPE);
        o.put("num_attention_heads", numAttentionHeads);
        o.put("num_hidden_layers", numHiddenLayers);
        o.put("num_key_value_heads", numKeyValueHeads);
        putId(o, "pad_token_id", padTokenId);
        o.put("pretraining_tp", 1);
        o.put("rms_norm_eps", rmsNormEps);
        ObjectNode rp = o.putObject("rope_parameters");
        putScaling(rp);
        rp.put("rope_theta", rope.theta());
        rp.put("rope_type", rope.type());
        if (rope.type().equals("default")) {
            o.putNull("rope_scaling");
        } else {
            ObjectNode rs = o.putObject("rope_scaling");
            putScaling(rs);
            rs.put("rope_type", rope.type());
        }
        o.put("rope_theta", rope.theta());
        o.put("tie_word_embeddings", tieWordEmbeddings);
        if (dtype != null) {
            o.put("torch_dtype", dtype);
        }
        o.put("use_cache", true);
        o.put("vocab_size", vocabSize);
        try {
            DefaultPrettyPrinter pp = new DefaultPrettyPrinter().withSeparators(
                    Separators.createDefaultInstance().withObjectFieldValueSpacing(Separators.Spacing.AFTER));
            pp.indentArraysWith(DefaultIndenter.SYSTEM_LINEFEED_INSTANCE);
            return JSON.writer(pp).writeValueAsString(o) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private void putScaling(ObjectNode n) {
        switch (rope.type()) {
            case "linear":
            case "dynamic":
                n.put("factor", rope.factor());
                break;
            case "llama3":
                n.put("factor", rope.factor());
                n.put("high_freq_factor", rope.highFreqFactor());
                n.put("low_freq_factor", rope.lowFreqFactor());
                n.put("original_max_position_embeddings", rope.originalMaxPositionEmbeddings());
                break;
            default:
                break;
        }
    }

    private static void putId(ObjectNode o, String key, Integer id) {
        if (id == null) {
            o.putNull(key);
        } else {
            o.put(key, id);
        }
    }

    /** Writes {@link #toJson()} to {@code dir/config.json} (atomically), creating {@code dir} if needed. */
    public void save(Path dir) {
        AtomicFiles.writeString(dir.resolve("config.json"), toJson());
    }

    // ---------------------------------------------------------------------------------------------- rope

    /** The rotary inverse frequencies at initialisation ({@code head_dim / 2} values), as transformers computes them. */
    public double[] ropeInvFreq() {
        return ropeInvFreq(maxPositionEmbeddings);
    }

    /**
     * The rotary inverse frequencies for sequences of length {@code seqLen}: only "dynamic" depends on it (its base
     * grows once {@code seqLen > max_position_embeddings}). Computed in double precision; transformers computes
     * in float32, so values agree to float32 rounding (about 1e-7 relative).
     *
     * <ul>
     *   <li>default: {@code 1 / theta^(2i/d)}</li>
     *   <li>linear: default divided by {@code factor}</li>
     *   <li>dynamic: default with {@code theta * ((factor * L / max_pos) - (factor - 1))^(d / (d - 2))},
     *       {@code L = max(seqLen, max_pos)}</li>
     *   <li>llama3: wavelengths above {@code orig_max / low_freq_factor} are divided by {@code factor}, those
     *       below {@code orig_max / high_freq_factor} kept, and those between interpolated smoothly</li>
     * </ul>
     */
    public double[] ropeInvFreq(long seqLen) {
        int d = headDim;
        double base = rope.theta();
        if (rope.type().equals("dynamic")) {
            long len = Math.max(seqLen, maxPositionEmbeddings);
            double f = rope.factor();
            base = base * Math.pow((f * len / maxPositionEmbeddings) - (f - 1), (double) d / (d - 2));
        }
        double[] inv = new double[d / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1.0 / Math.pow(base, (2.0 * i) / d);
        }
        switch (rope.type()) {
            case "linear":
                for (int i = 0; i < inv.length; i++) {
                    inv[i] /= rope.factor();
                }
                break;
            case "llama3": {
                double factor = rope.factor();
                double low = rope.lowFreqFactor();
                double high = rope.highFreqFactor();
                double oldLen = rope.originalMaxPositionEmbeddings();
                double lowFreqWavelen = oldLen / low;
                double highFreqWavelen = oldLen / high;
                for (int i = 0; i < inv.length; i++) {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen > lowFreqWavelen) {
                        inv[i] = inv[i] / factor;
                    } else if (wavelen >= highFreqWavelen) {
                        double smooth = (oldLen / wavelen - low) / (high - low);
                        inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
                    }
                }
                break;
            }
            default:
                break;
        }
        return inv;
    }

    // ------------------------------------------------------------------------------------------ accessors

    public int vocabSize() {
        return vocabSize;
    }

    public int hiddenSize() {
        return hiddenSize;
    }

    public int intermediateSize() {
        return intermediateSize;
    }

    public int numHiddenLayers() {
        return numHiddenLayers;
    }

    public int numAttentionHeads() {
        return numAttentionHeads;
    }

    public int numKeyValueHeads() {
        return numKeyValueHeads;
    }

    /** Size of one attention head. */
    public int headDim() {
        return headDim;
    }

    public double rmsNormEps() {
        return rmsNormEps;
    }

    /** The rotary embedding parameters. */
    public Rope rope() {
        return rope;
    }

    /** Shorthand for {@code rope().theta()}. */
    public double ropeTheta() {
        return rope.theta();
    }

    public int maxPositionEmbeddings() {
        return maxPositionEmbeddings;
    }

    public boolean tieWordEmbeddings() {
        return tieWordEmbeddings;
    }

    public boolean attentionBias() {
        return attentionBias;
    }

    public boolean mlpBias() {
        return mlpBias;
    }

    public double attentionDropout() {
        return attentionDropout;
    }

    public String hiddenAct() {
        return hiddenAct;
    }

    public double initializerRange() {
        return initializerRange;
    }

    public OptionalInt bosTokenId() {
        return bosTokenId == null ? OptionalInt.empty() : OptionalInt.of(bosTokenId);
    }

    /** The first EOS id (config.json may list several). */
    public OptionalInt eosTokenId() {
        return eosTokenIds.length == 0 ? OptionalInt.empty() : OptionalInt.of(eosTokenIds[0]);
    }

    /** All EOS ids (Llama 3 instruct configs list several); a copy. */
    public int[] eosTokenIds() {
        return eosTokenIds.clone();
    }

    public OptionalInt padTokenId() {
        return padTokenId == null ? OptionalInt.empty() : OptionalInt.of(padTokenId);
    }

    /** The weights' dtype as written by transformers ("bfloat16", "float32", ...): informational. */
    public Optional<String> dtype() {
        return Optional.ofNullable(dtype);
    }

    /** Number of query heads sharing one key/value head. */
    public int numKeyValueGroups() {
        return numAttentionHeads / numKeyValueHeads;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof LlamaConfig c)) {
            return false;
        }
        return vocabSize == c.vocabSize && hiddenSize == c.hiddenSize && intermediateSize == c.intermediateSize
                && numHiddenLayers == c.numHiddenLayers && numAttentionHeads == c.numAttentionHeads
                && numKeyValueHeads == c.numKeyValueHeads && headDim == c.headDim
                && Double.compare(rmsNormEps, c.rmsNormEps) == 0 && rope.equals(c.rope)
                && maxPositionEmbeddings == c.maxPositionEmbeddings && tieWordEmbeddings == c.tieWordEmbeddings
                && attentionBias == c.attentionBias && mlpBias == c.mlpBias
                && Double.compare(attentionDropout, c.attentionDropout) == 0 && hiddenAct.equals(c.hiddenAct)
                && Double.compare(initializerRange, c.initializerRange) == 0
                && Objects.equals(bosTokenId, c.bosTokenId) && Arrays.equals(eosTokenIds, c.eosTokenIds)
                && Objects.equals(padTokenId, c.padTokenId) && Objects.equals(dtype, c.dtype);
    }

    @Override
    public int hashCode() {
        return Objects.hash(vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, rmsNormEps, rope, maxPositionEmbeddings, tieWordEmbeddings);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT,
                "LlamaConfig[vocab=%d, hidden=%d, intermediate=%d, layers=%d, heads=%d, kvHeads=%d, headDim=%d, "
                        + "rope=%s(theta=%s), maxPos=%d, tied=%b]",
                vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads,
                headDim, rope.type(), rope.theta(), maxPositionEmbeddings, tieWordEmbeddings);
    }

    // -------------------------------------------------------------------------------------------- builder

    /** A builder with the transformers defaults for everything but the five sizes, which must be set. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding this config's values. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.vocabSize = vocabSize;
        b.hiddenSize = hiddenSize;
        b.intermediateSize = intermediateSize;
        b.numHiddenLayers = numHiddenLayers;
        b.numAttentionHeads = numAttentionHeads;
        b.numKeyValueHeads = numKeyValueHeads;
        b.headDim = headDim;
        b.rmsNormEps = rmsNormEps;
        b.rope = rope;
        b.maxPositionEmbeddings = maxPositionEmbeddings;
        b.tieWordEmbeddings = tieWordEmbeddings;
        b.attentionBias = attentionBias;
        b.mlpBias = mlpBias;
        b.attentionDropout = attentionDropout;
        b.hiddenAct = hiddenAct;
        b.initializerRange = initializerRange;
        b.bosTokenId = bosTokenId;
        b.eosTokenIds = eosTokenIds.clone();
        b.padTokenId = padTokenId;
        b.dtype = dtype;
        return b;
    }

    /** Builds a {@link LlamaConfig} programmatically; {@link #build()} validates like {@link #load}. */
    public static final class Builder {
        private int vocabSize;
        private int hiddenSize;
        private int intermediateSize;
        private int numHiddenLayers;
        private int numAttentionHeads;
        private Integer numKeyValueHeads;
        private Integer headDim;
        private double rmsNormEps = 1e-6;
        private Rope rope = Rope.standard(10000.0);
        private String ropeField = "rope_parameters";
        private int maxPositionEmbeddings = 2048;
        private boolean tieWordEmbeddings;
        private boolean attentionBias;
        private boolean mlpBias;
        private double attentionDropout;
        private String hiddenAct = "silu";
        private double initializerRange = 0.02;
        private Integer bosTokenId;
        private int[] eosTokenIds = new int[0];
        private Integer padTokenId;
        private String dtype;

        private Builder() {
        }

        public Builder vocabSize(int v) {
            vocabSize = v;
            return this;
        }

        public Builder hiddenSize(int v) {
            hiddenSize = v;
            return this;
        }

        public Builder intermediateSize(int v) {
            intermediateSize = v;
            return this;
        }

        public Builder numHiddenLayers(int v) {
            numHiddenLayers = v;
            return this;
        }

        public Builder numAttentionHeads(int v) {
            numAttentionHeads = v;
            return this;
        }

        /** Default: the number of attention heads (no grouped-query attention). */
        public Builder numKeyValueHeads(int v) {
            numKeyValueHeads = v;
            return this;
        }

        /** Default: hidden_size / num_attention_heads. */
        public Builder headDim(int v) {
            headDim = v;
            return this;
        }

        public Builder rmsNormEps(double v) {
            rmsNormEps = v;
            return this;
        }

        /** Sets the rope base, keeping the rope type and scaling. */
        public Builder ropeTheta(double theta) {
            rope = new Rope(rope.type(), theta, rope.factor(), rope.lowFreqFactor(), rope.highFreqFactor(),
                    rope.originalMaxPositionEmbeddings());
            return this;
        }

        public Builder rope(Rope r) {
            rope = Objects.requireNonNull(r, "rope");
            return this;
        }

        public Builder maxPositionEmbeddings(int v) {
            maxPositionEmbeddings = v;
            return this;
        }

        public Builder tieWordEmbeddings(boolean v) {
            tieWordEmbeddings = v;
            return this;
        }

        public Builder attentionBias(boolean v) {
            attentionBias = v;
            return this;
        }

        public Builder mlpBias(boolean v) {
            mlpBias = v;
            return this;
        }

        public Builder attentionDropout(double v) {
            attentionDropout = v;
            return this;
        }

        public Builder initializerRange(double v) {
            initializerRange = v;
            return this;
        }

        public Builder bosTokenId(Integer id) {
            bosTokenId = id;
            return this;
        }

        /** One or more EOS ids; none clears them. */
        public Builder eosTokenIds(int... ids) {
            eosTokenIds = ids.clone();
            return this;
        }

        public Builder padTokenId(Integer id) {
            padTokenId = id;
            return this;
        }

        /** Informational weights dtype, e.g. "bfloat16"; null for none. */
        public Builder dtype(String v) {
            dtype = v;
            return this;
        }

        /**
         * Validates and builds.
         *
         * @throws CollieException naming the offending field
         */
        public LlamaConfig build() {
            return new LlamaConfig(this, "LlamaConfig.builder()");
        }
    }
}
