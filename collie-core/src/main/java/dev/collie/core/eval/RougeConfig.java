package dev.collie.core.eval;

import java.util.List;
import java.util.Locale;

/**
 * The settings of {@link RougeMetric}; {@link #DEFAULT} scores ROUGE-1, ROUGE-2 and ROUGE-L on torchmetrics'
 * normalised words.
 *
 * @param variants {@code rouge-1} ... {@code rouge-9} (n-gram overlap) and {@code rouge-l} (longest common
 *                 subsequence), in the order the values are listed
 * @param tokenizer how texts split into words
 */
public record RougeConfig(List<String> variants, TextTokenizer tokenizer) {
    /** ROUGE-1, ROUGE-2 and ROUGE-L with {@link TextTokenizer#ROUGE}. */
    public static final RougeConfig DEFAULT = new RougeConfig(List.of("rouge-1", "rouge-2", "rouge-l"),
            TextTokenizer.ROUGE);

    public RougeConfig {
        if (variants == null || variants.isEmpty() || tokenizer == null) {
            throw new IllegalArgumentException("ROUGE needs at least one variant and a tokenizer");
        }
        variants = variants.stream().map(v -> v.toLowerCase(Locale.ROOT)).toList();
        for (String v : variants) {
            order(v);
        }
        if (variants.stream().distinct().count() != variants.size()) {
            throw new IllegalArgumentException("ROUGE variants listed twice: " + variants);
        }
    }

    /** The n-gram order of variant {@code v}, or 0 for {@code rouge-l}. */
    static int order(String v) {
        if (v.equals("rouge-l")) {
            return 0;
        }
        if (v.matches("rouge-[1-9]")) {
            return v.charAt(6) - '0';
        }
        throw new IllegalArgumentException("unknown ROUGE variant '" + v + "'; known: rouge-1 ... rouge-9, rouge-l");
    }
}
