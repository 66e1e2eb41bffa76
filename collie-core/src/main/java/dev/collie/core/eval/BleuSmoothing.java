package dev.collie.core.eval;

import dev.collie.core.CollieException;

import java.util.Locale;

/**
 * How BLEU treats an n-gram order with no match: the smoothings CoLLiE's {@code BleuMetric} offers, named as nltk's
 * {@code SmoothingFunction} names them, with CoLLiE's names accepted too. {@code m} is an order's clipped matches and
 * {@code t} its hypothesis n-grams (summed over the corpus for micro BLEU); {@code max(1, t)} is CoLLiE's floor.
 */
public enum BleuSmoothing {
    /** nltk {@code method0}, CoLLiE {@code no_smooth}: m / max(1, t); any order without a match makes BLEU 0. */
    METHOD0("method0", "no_smooth"),
    /** nltk {@code method1} (epsilon 0.1), CoLLiE {@code smooth1}: an order with m = 0 counts 0.1 / max(1, t). */
    METHOD1("method1", "smooth1"),
    /**
     * nltk {@code method2}, CoLLiE {@code nltk_smooth2} (Lin and Och 2004): (m + 1) / (max(1, t) + 1) for every order
     * but unigrams.
     */
    METHOD2("method2", "nltk_smooth2"),
    /**
     * sacrebleu {@code add-k} with k 1, CoLLiE {@code smooth2} (ignite's): (m + 1) / (t + 1) for every order but
     * unigrams, without the floor; nltk has no such method.
     */
    ADD_K("add-k", "smooth2");

    private final String name;
    private final String collieName;

    BleuSmoothing(String name, String collieName) {
        this.name = name;
        this.collieName = collieName;
    }

    /** The name this smoothing is known by ({@code method0}, ..., {@code add-k}). */
    public String label() {
        return name;
    }

    /**
     * The smoothing called {@code name}, in nltk's (sacrebleu's for {@code add-k}) or CoLLiE's words.
     *
     * @throws CollieException for another name, listing the known ones
     */
    public static BleuSmoothing named(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        for (BleuSmoothing s : values()) {
            if (s.name.equals(n) || s.collieName.equals(n)) {
                return s;
            }
        }
        throw new CollieException("unknown BLEU smoothing '" + name + "'; known: method0 (no_smooth), method1"
                + " (smooth1), method2 (nltk_smooth2), add-k (smooth2)");
    }

    /** The smoothed precision of n-gram order {@code order} (1-based) from its matches and hypothesis n-grams. */
    double precision(int order, long matches, long total) {
        long floored = Math.max(1, total);
        return switch (this) {
            case METHOD0 -> (double) matches / floored;
            case METHOD1 -> matches == 0 ? 0.1 / floored : (double) matches / floored;
            case METHOD2 -> order == 1 ? (double) matches / floored : (matches + 1.0) / (floored + 1.0);
            case ADD_K -> order == 1 ? (double) matches / total : (matches + 1.0) / (total + 1.0);
        };
    }
}
