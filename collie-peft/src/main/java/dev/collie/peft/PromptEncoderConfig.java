package dev.collie.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;

/**
 * P-tuning (peft's {@code PromptEncoderConfig} with {@code encoder_reparameterization_type="MLP"}): a table of
 * {@code numVirtualTokens} embeddings through {@code Linear → ReLU → Linear → ReLU → Linear} of hidden width
 * {@code encoderHiddenSize} (default: the model's hidden size) gives the virtual tokens put in front of the input.
 */
public record PromptEncoderConfig(int numVirtualTokens, Integer encoderHiddenSize, String baseModelNameOrPath)
        implements PeftConfig {
    public PromptEncoderConfig {
        if (numVirtualTokens <= 0) {
            throw new IllegalArgumentException("num_virtual_tokens must be positive, got " + numVirtualTokens);
        }
        if (encoderHiddenSize != null && encoderHiddenSize <= 0) {
            throw new IllegalArgumentException("encoder_hidden_size must be positive, got " + encoderHiddenSize);
        }
    }

    /** {@code numVirtualTokens} through an MLP of hidden width {@code encoderHiddenSize}. */
    public static PromptEncoderConfig of(int numVirtualTokens, int encoderHiddenSize) {
        return new PromptEncoderConfig(numVirtualTokens, encoderHiddenSize, null);
    }

    @Override
    public PeftType type() {
        return PeftType.P_TUNING;
    }

    @Override
    public PromptEncoderConfig withBaseModel(String nameOrPath) {
        return new PromptEncoderConfig(numVirtualTokens, encoderHiddenSize, nameOrPath);
    }

    /** The MLP's hidden width on a model of {@code shape}. */
    public int encoderHiddenSize(BaseModelShape shape) {
        return encoderHiddenSize != null ? encoderHiddenSize : shape.hidden();
    }

    @Override
    public ObjectNode toJson(BaseModelShape shape) {
        ObjectNode n = AdapterJson.template(PeftType.P_TUNING);
        PromptLearning.putCommon(n, numVirtualTokens, shape.hidden(), shape.heads(), shape, baseModelNameOrPath);
        n.put("encoder_hidden_size", encoderHiddenSize(shape));
        return n;
    }

    static PromptEncoderConfig fromJson(JsonNode j, String where) {
        PromptLearning.checkCommon(j, where);
        String kind = AdapterJson.textField(j, "encoder_reparameterization_type");
        if (kind != null && !kind.equals("MLP")) {
            throw new CollieException(where + ": encoder_reparameterization_type " + kind
                    + " is not supported (only MLP)");
        }
        return new PromptEncoderConfig(AdapterJson.required(j, "num_virtual_tokens", where),
                AdapterJson.optInt(j, "encoder_hidden_size"), AdapterJson.textField(j, "base_model_name_or_path"));
    }
}
