package dev.collie.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How a model is adapted: one of {@link LoraConfig}, {@link PrefixTuningConfig}, {@link PromptTuningConfig},
 * {@link PromptEncoderConfig} (P-tuning). Each reads and writes Hugging Face peft's {@code adapter_config.json}.
 */
public sealed interface PeftConfig permits LoraConfig, PrefixTuningConfig, PromptTuningConfig, PromptEncoderConfig {
    /** The file name peft uses for the configuration. */
    String FILE = "adapter_config.json";

    PeftType type();

    /** The base model's directory or hub id, written as {@code base_model_name_or_path}; may be null. */
    String baseModelNameOrPath();

    /** This configuration with another {@code base_model_name_or_path}. */
    PeftConfig withBaseModel(String nameOrPath);

    /** The fields peft writes for this configuration on a model of {@code shape} ({@code inference_mode} true). */
    ObjectNode toJson(BaseModelShape shape);

    /** Reads a configuration from peft's JSON; fails on options collie does not implement. */
    static PeftConfig fromJson(JsonNode json, String where) {
        String type = AdapterJson.textField(json, "peft_type");
        if (type == null) {
            throw new CollieException(where + ": no peft_type");
        }
        String task = AdapterJson.textField(json, "task_type");
        if (task != null && !task.equals("CAUSAL_LM")) {
            throw new CollieException(where + ": task_type " + task + " is not supported (only CAUSAL_LM)");
        }
        return switch (type) {
            case "LORA" -> LoraConfig.fromJson(json, where);
            case "PREFIX_TUNING" -> PrefixTuningConfig.fromJson(json, where);
            case "PROMPT_TUNING" -> PromptTuningConfig.fromJson(json, where);
            case "P_TUNING" -> PromptEncoderConfig.fromJson(json, where);
            default -> throw new CollieException(where + ": peft_type " + type
                    + " is not supported (LORA, PREFIX_TUNING, PROMPT_TUNING, P_TUNING are)");
        };
    }

    /** Reads {@code dir/adapter_config.json}. */
    static PeftConfig load(Path dir) {
        Path file = dir.resolve(FILE);
        if (!Files.isRegularFile(file)) {
            throw new CollieException(dir + ": no " + FILE + " (not a peft adapter directory)");
        }
        try {
            return fromJson(AdapterJson.MAPPER.readTree(file.toFile()), file.toString());
        } catch (IOException e) {
            throw new CollieException(file + ": cannot read: " + e.getMessage(), e);
        }
    }
}
