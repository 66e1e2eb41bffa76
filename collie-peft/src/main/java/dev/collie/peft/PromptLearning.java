package dev.collie.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;

/** The {@code adapter_config.json} fields that prefix tuning, prompt tuning and P-tuning share. */
final class PromptLearning {
    private PromptLearning() {
    }

    static void putCommon(ObjectNode n, int virtualTokens, int tokenDim, int heads, BaseModelShape shape, String base) {
        n.put("num_virtual_tokens", virtualTokens);
        n.put("token_dim", tokenDim);
        n.put("num_attention_heads", heads);
        n.put("num_layers", shape.numLayers());
        n.put("num_transformer_submodules", 1);
        n.put("base_model_name_or_path", base);
        n.put("inference_mode", true);
        n.put("task_type", "CAUSAL_LM");
    }

    static void checkCommon(JsonNode j, String where) {
        int sub = AdapterJson.intField(j, "num_transformer_submodules", 1);
        if (sub != 1) {
            throw new CollieException(where + ": num_transformer_submodules " + sub
                    + " is not supported (decoder-only models have 1)");
        }
    }
}
