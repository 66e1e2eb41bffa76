package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.io.HfCheckpoint;
import dev.collie.core.io.HfWeights;
import dev.collie.core.train.Memory;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.HfTokenizer;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/** What the train, score and generate commands share: loading models and tokenizers, parsing ids. */
final class CliSupport {
    /** Files of a Hugging Face tokenizer directory that are copied next to a saved model. */
    static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "chat_template.jinja", "tokenizer.model", "added_tokens.json", "vocab.json",
            "merges.txt");

    private CliSupport() {
    }

    /** Loads the Hugging Face directory {@code dir} in float32, checking first that it is a directory. */
    static DecoderForCausalLM loadModel(Path dir) {
        checkModelDirectory(dir);
        return DecoderCheckpoint.load(dir, DataType.FLOAT);
    }

    /** The config.json of the Hugging Face directory {@code dir}, checking first that it is a directory. */
    static DecoderConfig modelConfig(Path dir) {
        checkModelDirectory(dir);
        return DecoderConfig.load(dir.resolve("config.json"));
    }

    private static void checkModelDirectory(Path dir) {
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
    }

    /**
     * The model of {@code dir/config.json} with freshly initialised weights (for a rank that then loads only
     * its own part of {@code dir}'s weights).
     */
    static DecoderForCausalLM modelFromConfig(Path dir) {
        DecoderConfig config = modelConfig(dir);
        try (HfWeights w = HfCheckpoint.open(dir)) {
            DecoderCheckpoint.checkWeights(config, w);    // before the model is allocated
        }
        return new DecoderForCausalLM(config, DataType.FLOAT);
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

    /**
     * The tokenizer {@code command} needs ({@code --tokenizer}, else the model directory's), checked against the
     * model's vocabulary ({@link #requireTokenizerFits}); the caller closes it.
     */
    static HfTokenizer requiredTokenizer(Path tokenizerPath, Path model, DecoderConfig config, String command) {
        HfTokenizer tok = tokenizer(tokenizerPath, model);
        if (tok == null) {
            throw new CollieException(command + " needs a tokenizer: " + model + " has no tokenizer.json;"
                    + " give --tokenizer DIR");
        }
        try {
            requireTokenizerFits(tok, config, model);
        } catch (RuntimeException e) {
            tok.close();
            throw e;
        }
        return tok;
    }

    /** The model's EOS ids and the tokenizer's, each once: generation stops at any of them. */
    static int[] eosIds(DecoderConfig config, HfTokenizer tok) {
        return IntStream.concat(config.eosTokenIds().stream().mapToInt(Integer::intValue),
                tok.eosId().isPresent() ? IntStream.of(tok.eosId().getAsInt()) : IntStream.empty()).distinct().toArray();
    }

    /** Refuses a tokenizer with ids the model of {@code config} (read from {@code modelDir}, or a preset) lacks. */
    static void requireTokenizerFits(HfTokenizer tok, DecoderConfig config, Path modelDir) {
        if (tok != null) {
            tok.requireFits(config.vocabSize(), modelDir != null ? modelDir.resolve("config.json").toString()
                    : "the new model");
        }
    }

    /** {@code value}, refused below {@code min} naming the flag: {@code "--steps -1: must be at least 1"}. */
    static long atLeast(String flag, long value, long min) {
        if (value < min) {
            throw new CollieException(flag + " " + value + ": must be at least " + min);
        }
        return value;
    }

    /**
     * A size as transformers' {@code max_shard_size} takes it: bytes, or a number with KB, MB, GB or TB (powers of
     * 1000, any case): {@code "50GB"} is 5·10^10. Refused naming the flag otherwise.
     */
    static long byteSize(String flag, String text) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\\s*(\\d+(?:\\.\\d+)?)\\s*([KMGT]B)?\\s*",
                java.util.regex.Pattern.CASE_INSENSITIVE).matcher(text);
        if (!m.matches()) {
            throw new CollieException(flag + " " + text + ": expected bytes or a size such as 500MB or 5GB");
        }
        int power = m.group(2) == null ? 0 : "KMGT".indexOf(Character.toUpperCase(m.group(2).charAt(0))) + 1;
        double bytes = Double.parseDouble(m.group(1)) * Math.pow(1000, power);
        if (bytes < 1 || bytes > Long.MAX_VALUE) {
            throw new CollieException(flag + " " + text + ": must be at least one byte and below 2^63");
        }
        return (long) bytes;
    }

    /** Refuses, before any work, an output file that is a directory or whose directory cannot be written. */
    static void outputFile(String flag, Path file) {
        Path abs = file.toAbsolutePath().normalize();
        if (Files.isDirectory(abs) || abs.getFileName() == null) {
            throw new CollieException(flag + ": " + file + " is a directory; give the path of a file to write");
        }
        writableAncestor(flag, file, abs.getParent());
    }

    /** Refuses, before any work, an output directory that is a file or cannot be created or written. */
    static void outputDirectory(String flag, Path dir) {
        Path abs = dir.toAbsolutePath().normalize();
        if (Files.exists(abs) && !Files.isDirectory(abs)) {
            throw new CollieException(flag + ": " + dir + " exists and is not a directory");
        }
        writableAncestor(flag, dir, abs);
    }

    /** The nearest existing directory at or above {@code dir} must be writable (what is missing below is created). */
    private static void writableAncestor(String flag, Path given, Path dir) {
        Path d = dir;
        while (d != null && !Files.exists(d)) {
            d = d.getParent();
        }
        if (d == null || !Files.isDirectory(d)) {
            throw new CollieException(flag + ": cannot create " + given + ": " + d + " is not a directory");
        }
        if (!Files.isWritable(d)) {
            throw new CollieException(flag + ": cannot write " + given + ": " + d + " is not writable");
        }
    }

    /**
     * Refuses, before the step is run, a step that cannot fit in {@link Memory#limit()}: {@code copies} models'
     * weights (and their gradients when {@code gradients}), one layer's attention probabilities and the logits of
     * {@code rows} rows of {@code seq} tokens. A lower bound (optimizer state and other activations come on top), so
     * a run that fits is never refused; the message ends with {@code remedy} where the activations weigh most.
     */
    static void requireStepMemory(DecoderConfig c, long rows, long seq, int copies, boolean gradients, String remedy) {
        long weights = Memory.times(Memory.times(c.parameterCount(), 4), (gradients ? 2L : 1L) * copies);
        long scores = c.attentionScoreBytes(rows, seq);
        long logits = c.logitBytes(rows, seq);
        Memory.limit().require(Memory.plus(weights, Memory.plus(scores, logits)), String.format(Locale.ROOT,
                "a step over %d row(s) of %d tokens needs at least %%s (%s%s %s, one layer's attention scores %s,"
                        + " logits %s)", rows, seq, copies > 1 ? copies + " copies of the weights" : "weights",
                gradients ? " and gradients" : "", Memory.format(weights), Memory.format(scores),
                Memory.format(logits)), weights >= Memory.plus(scores, logits)
                ? "use a smaller model" + (copies > 1 ? " or fewer ranks" : "") : remedy);
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

    /** Bytes of the weight files ({@code *.safetensors}) in {@code modelDir}: what saving the model again takes. */
    static long weightBytes(Path modelDir) {
        try (Stream<Path> s = Files.list(modelDir)) {
            long n = 0;
            for (Path p : s.filter(f -> f.getFileName().toString().endsWith(".safetensors")).toList()) {
                n += Files.size(p);
            }
            return n;
        } catch (IOException e) {
            return 0;      // the model's own loading reports what is wrong with the directory
        }
    }

    /**
     * Copies the tokenizer files in {@code from}, generation_config.json of {@code modelDir}, and the Python files of
     * a remote-code family in either, to {@code to}.
     */
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
            // a remote-code family's own Python files (InternLM2's, ChatGLM's model and tokenizer), which the
            // auto_map of its config.json and tokenizer_config.json name
            for (Path src : new Path[] {modelDir, from}) {
                if (src != null && Files.isDirectory(src)) {
                    try (var files = Files.list(src)) {
                        for (Path f : files.filter(p -> p.getFileName().toString().endsWith(".py")).toList()) {
                            copyIfPresent(f, to.resolve(f.getFileName().toString()));
                        }
                    }
                }
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
