package dev.collie.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;

import java.util.List;

/**
 * Prompt tuning: {@code numVirtualTokens} learned embeddings put in front of the input's. Initialisation as peft:
 * {@code RANDOM} (normal(0, 1), as {@code nn.Embedding}), {@code SAMPLE_VOCAB} (rows of the word embedding at
 * random ids) or {@code TEXT} (the word embeddings of {@code initTokenIds}, the tokenized {@code initText},
 * repeated or cut to length). collie has no tokenizer here: give the ids of the text.
 */
public record PromptTuningConfig(int numVirtualTokens, Init init, String initText, List<Integer> initTokenIds,
                                 String tokenizerNameOrPath, String baseModelNameOrPath) implements PeftConfig {
    /** peft's {@code prompt_tuning_init}. */
    public enum Init { RANDOM, SAMPLE_VOCAB, TEXT }

    public PromptTuningConfig {
        if (numVirtualTokens <= 0) {
            throw new IllegalArgumentException("num_virtual_tokens must be positive, got " + numVirtualTokens);
        }
        init = init == null ? Init.RANDOM : init;
        initTokenIds = initTokenIds == null ? null : List.copyOf(initTokenIds);
    }

    /** Randomly initialised prompt of {@code numVirtualTokens}. */
    public static PromptTuningConfig of(int numVirtualTokens) {
        return new PromptTuningConfig(numVirtualTokens, Init.RANDOM, null, null, null, null);
    }

    /** Initialised from the embeddings of {@code tokenIds}, the tokenization of {@code text} (kept for the file). */
    public static PromptTuningConfig fromText(int numVirtualTokens, String text, List<Integer> tokenIds,
                                              String tokenizerNameOrPath) {
        if (tokenIds == null || tokenIds.isEmpty()) {
            throw new IllegalArgumentException("TEXT initialisation needs the token ids of the text");
        }
        return new PromptTuningConfig(numVirtualTokens, Init.TEXT, text, tokenIds, tokenizerNameOrPath, null);
    }

    @Override
    public PeftType type() {
        return PeftType.PROMPT_TUNING;
    }

    @Override
    public PromptTuningConfig withBaseModel(String nameOrPath) {
        return new PromptTuningConfig(numVirtualTokens, init, initText, initTokenIds, tokenizerNameOrPath, nameOrPath);
    }

    @Override
    public ObjectNode toJson(BaseModelShape shape) {
        ObjectNode n = AdapterJson.template(PeftType.PROMPT_TUNING);
        PromptLearning.putCommon(n, numVirtualTokens, shape.hidden(), shape.heads(), shape, baseModelNameOrPath);
        n.put("prompt_tuning_init", init.name());
        n.put("prompt_tuning_init_text", initText);
        n.put("tokenizer_name_or_path", tokenizerNameOrPath);
        return n;
    }

    static PromptTuningConfig fromJson(JsonNode j, String where) {
        PromptLearning.checkCommon(j, where);
        String init = AdapterJson.textField(j, "prompt_tuning_init");
        Init i;
        try {
            i = init == null ? Init.RANDOM : Init.valueOf(init);
        } catch (IllegalArgumentException e) {
            throw new CollieException(where + ": prompt_tuning_init \"" + init + "\" is not supported");
        }
        // the stored embeddings replace any initialisation, so TEXT needs no ids when loading
        return new PromptTuningConfig(AdapterJson.required(j, "num_virtual_tokens", where), i,
                AdapterJson.textField(j, "prompt_tuning_init_text"), null,
                AdapterJson.textField(j, "tokenizer_name_or_path"),
                AdapterJson.textField(j, "base_model_name_or_path"));
    }
}
