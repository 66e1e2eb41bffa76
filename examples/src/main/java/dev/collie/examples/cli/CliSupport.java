package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.io.HfCheckpoint;
import dev.collie.core.io.HfWeights;
import dev.collie.models.llama.LlamaCheckpoint;
import dev.collie.models.llama.LlamaConfig;
import dev.collie.models.llama.LlamaForCausalLM;
import dev.collie.models.tokenizer.HfTokenizer;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/** What the train, score and generate commands share: loading models and tokenizers, parsing ids. */
final class CliSupport {
    /** Files of a Hugging Face tokenizer directory that are copied next to a saved model. */
    static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "tokenizer.model", "added_tokens.json", "vocab.json", "merges.txt");

    private CliSupport() {
    }

    /** Loads the Hugging Face directory {@code dir} in float32, checking first that it is a directory. */
    static LlamaForCausalLM loadModel(Path dir) {
        if (dir == null) {
            throw new CollieException("--model DIR is required (a Hugging Face model directory)");
        }
        if (!Files.exists(dir)) {
            throw new CollieException("--model: no such directory: " + dir);
        }
        if (!Files.isDirectory(dir)) {
            throw new CollieException("--model: " + dir + " is not a directory (expected a Hugging Face model"
                    + " directory with config.json and model.safetensors)");
        }
        return LlamaCheckpoint.load(dir, DataType.FLOAT);
    }

    /**
     * The model of {@code dir/config.json} with freshly initialised weights (for a rank that then loads only
     * its own part of {@code dir}'s weights).
     */
    static LlamaForCausalLM modelFromConfig(Path dir) {
        if (dir == null || !Files.isDirectory(dir)) {
            return loadModel(dir);    // the same errors
        }
        LlamaConfig config = LlamaConfig.load(dir.resolve("config.json"));
        try (HfWeights w = HfCheckpoint.open(dir)) {
            LlamaCheckpoint.checkWeights(config, w);    // before the model is allocated
        }
        return new LlamaForCausalLM(config, DataType.FLOAT);
    }

    /** The tokenizer given with --tokenizer, else the one in the model directory, else null. */
    static HfTokenizer tokenizer(Path explicit, Path modelDir) {
        if (explicit != null) {
            if (!Files.exists(explicit)) {
                throw new CollieException("--tokenizer: no such file or directory: " + explicit);
            }
            return HfTokenizer.load(explicit);
        }
        if (modelDir != null && Files.isRegularFile(modelDir.resolve("tokenizer.json"))) {
            return HfTokenizer.load(modelDir);
        }
        return null;
    }

    /** The directory holding a tokenizer (the path itself, or the parent of a tokenizer.json file). */
    static Path tokenizerDir(HfTokenizer tok) {
        return tok.path().toAbsolutePath().getParent();
    }

    /** Parses {@code 1,2,3} into ids, each in {@code [0, vocab)}. */
    static int[] parseIds(String text, long vocab) {
        String[] parts = text.trim().split("\\s*,\\s*");
        if (text.isBlank()) {
            throw new CollieException("--ids: no token ids given (expected e.g. --ids 1,2,3)");
        }
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            long v;
            try {
                v = Long.parseLong(parts[i]);
            } catch (NumberFormatException e) {
                throw new CollieException("--ids: '" + parts[i] + "' is not a token id (expected integers separated"
                        + " by commas, e.g. --ids 1,2,3)");
            }
            if (v < 0 || v >= vocab) {
                throw new CollieException("--ids: token id " + v + " is outside the model's vocabulary [0, " + vocab
                        + ")");
            }
            ids[i] = (int) v;
        }
        return ids;
    }

    /** Copies the tokenizer files in {@code from}, and generation_config.json of {@code modelDir}, to {@code to}. */
    static void copyTokenizerFiles(Path from, Path modelDir, Path to) {
        try {
            Files.createDirectories(to);
            if (from != null) {
                for (String f : TOKENIZER_FILES) {
                    copyIfPresent(from.resolve(f), to.resolve(f));
                }
            }
            if (modelDir != null) {
                copyIfPresent(modelDir.resolve("generation_config.json"), to.resolve("generation_config.json"));
            }
        } catch (IOException e) {
            throw new CollieException(to + ": cannot copy the tokenizer files: " + e.getMessage(), e);
        }
    }

    private static void copyIfPresent(Path src, Path dst) throws IOException {
        if (Files.isRegularFile(src) && !src.toAbsolutePath().normalize().equals(dst.toAbsolutePath().normalize())) {
            Files.copy(src, dst, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
