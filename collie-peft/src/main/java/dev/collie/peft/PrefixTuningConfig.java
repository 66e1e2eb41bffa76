package dev.collie.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;

/**
 * Prefix tuning: {@code numVirtualTokens} learned key/value positions in front of every attention layer's own.
 * The prefix is a table {@code [numVirtualTokens, layers · 2 · kvHeads · headDim]}, or with {@code prefixProjection}
 * peft's reparameterisation: a table {@code [numVirtualTokens, kvHeads · headDim]} through
 * {@code Linear → tanh → Linear} of width {@code encoderHiddenSize} (default: {@code kvHeads · headDim}).
 * {@code zeroInit} is peft's {@code init_weights="zero"} (the prefix starts at zero).
 */
public record PrefixTuningConfig(int numVirtualTokens, boolean prefixProjection, Integer encoderHiddenSize,
                                 boolean zeroInit, String baseModelNameOrPath) implements PeftConfig {
    public PrefixTuningConfig {
        if (numVirtualTokens <= 0) {
            throw new IllegalArgumentException("num_virtual_tokens must be positive, got " + numVirtualTokens);
        }
        if (encoderHiddenSize != null && encoderHiddenSize <= 0) {
            throw new IllegalArgumentException("encoder_hidden_size must be positive, got " + encoderHiddenSize);
        }
    }

    /** A plain prefix table of {@code numVirtualTokens} positions, randomly initialised. */
    public static PrefixTuningConfig of(int numVirtualTokens) {
        return new PrefixTuningConfig(numVirtualTokens, false, null, false, null);
    }

    /** With peft's reparameterisation MLP of hidden width {@code encoderHiddenSize}. */
    public static PrefixTuningConfig withProjection(int numVirtualTokens, int encoderHiddenSize) {
        return new PrefixTuningConfig(numVirtualTokens, true, encoderHiddenSize, false, null);
    }

    @Override
    public PeftType type() {
        return PeftType.PREFIX_TUNING;
    }

    @Override
    public PrefixTuningConfig withBaseModel(String nameOrPath) {
        return new PrefixTuningConfig(numVirtualTokens, prefixProjection, encoderHiddenSize, zeroInit, nameOrPath);
    }

    /** The MLP's hidden width on a model of {@code shape}. */
    public int encoderHiddenSize(BaseModelShape shape) {
        return encoderHiddenSize != null ? encoderHiddenSize : shape.kvWidth();
    }

    @Override
    public ObjectNode toJson(BaseModelShape shape) {
        ObjectNode n = AdapterJson.template(PeftType.PREFIX_TUNING);
        PromptLearning.putCommon(n, numVirtualTokens, shape.kvWidth(), shape.kvHeads(), shape, baseModelNameOrPath);
        n.put("prefix_projection", prefixProjection);
        n.put("encoder_hidden_size", encoderHiddenSize(shape));
        if (zeroInit) {
            n.put("init_weights", "zero");
        } else {
            n.putNull("init_weights");
        }
        return n;
    }

    static PrefixTuningConfig fromJson(JsonNode j, String where) {
        PromptLearning.checkCommon(j, where);
        String init = AdapterJson.textField(j, "init_weights");
        if (init != null && !init.equals("zero")) {
            throw new CollieException(where + ": init_weights \"" + init + "\" is not supported");
        }
        return new PrefixTuningConfig(AdapterJson.required(j, "num_virtual_tokens", where),
                AdapterJson.boolField(j, "prefix_projection", false), AdapterJson.optInt(j, "encoder_hidden_size"),
                init != null, AdapterJson.textField(j, "base_model_name_or_path"));
    }
}
