package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.models.decoder.DecoderConfig;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Named LLaMA shapes for training from scratch ({@code collie train --preset NAME}); the vocabulary size comes
 * from the tokenizer. {@code tiny} (hidden 64, 2 layers, ~0.1M parameters without embeddings) is for tests,
 * {@code small} (hidden 256, 4 layers, ~3M without embeddings) trains on a laptop CPU in minutes,
 * {@code medium} (hidden 512, 8 layers, ~25M without embeddings) is the size of the smallest TinyStories models.
 */
public final class Presets {
    /** hidden, layers, heads, kv heads, intermediate */
    private static final Map<String, int[]> SHAPES = new LinkedHashMap<>();

    static {
        SHAPES.put("tiny", new int[] {64, 2, 4, 2, 172});
        SHAPES.put("small", new int[] {256, 4, 4, 4, 688});
        SHAPES.put("medium", new int[] {512, 8, 8, 8, 1376});
    }

    private Presets() {
    }

    /** The preset names, smallest first. */
    public static Set<String> names() {
        return Collections.unmodifiableSet(SHAPES.keySet());
    }

    /**
     * A config builder of preset {@code name} with {@code vocabSize} tokens (untied embeddings, rope theta 10000,
     * 2048 positions); set token ids or more positions on it before {@code build()}.
     *
     * @throws CollieException for an unknown name
     */
    public static DecoderConfig.Builder builder(String name, int vocabSize) {
        int[] s = SHAPES.get(name);
        if (s == null) {
            throw new CollieException("--preset: unknown preset '" + name + "' (available: "
                    + String.join(", ", SHAPES.keySet()) + ")");
        }
        if (vocabSize <= 0) {
            throw new CollieException("--preset " + name + ": the vocabulary size must be positive, got " + vocabSize);
        }
        return DecoderConfig.builder().vocabSize(vocabSize).hiddenSize(s[0]).numHiddenLayers(s[1])
                .numAttentionHeads(s[2]).numKeyValueHeads(s[3]).intermediateSize(s[4]).headDim(s[0] / s[2])
                .maxPositionEmbeddings(2048).ropeTheta(10000.0).rmsNormEps(1e-6).tieWordEmbeddings(false);
    }

    /** Preset {@code name} with {@code vocabSize} tokens. */
    public static DecoderConfig get(String name, int vocabSize) {
        return builder(name, vocabSize).build();
    }
}
