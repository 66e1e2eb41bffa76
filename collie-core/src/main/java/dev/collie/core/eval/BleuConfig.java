package dev.collie.core.eval;

/**
 * The settings of {@link BleuMetric}; {@link #DEFAULT} is CoLLiE's: 4-grams, no smoothing, macro average,
 * whitespace words.
 *
 * @param ngram the highest n-gram order, weighted uniformly (1/ngram each), ≥ 1
 * @param smoothing what an order without a match counts
 * @param average {@link Average#MACRO}: the mean of every sentence's BLEU; {@link Average#MICRO}: one corpus BLEU
 *                from the summed n-gram counts and lengths
 * @param tokenizer how texts split into words
 */
public record BleuConfig(int ngram, BleuSmoothing smoothing, Average average, TextTokenizer tokenizer) {
    /** CoLLiE's defaults. */
    public static final BleuConfig DEFAULT = new BleuConfig(4, BleuSmoothing.METHOD0, Average.MACRO,
            TextTokenizer.WHITESPACE);

    public BleuConfig {
        if (ngram < 1) {
            throw new IllegalArgumentException("ngram must be >= 1, got " + ngram);
        }
        if (smoothing == null || average == null || tokenizer == null) {
            throw new IllegalArgumentException("BLEU needs a smoothing, an average and a tokenizer");
        }
    }

    /** How per-sentence statistics become one figure. */
    public enum Average {
        /** The mean of sentence BLEU scores (nltk's {@code sentence_bleu}, averaged). */
        MACRO,
        /** Corpus BLEU (nltk's {@code corpus_bleu}, sacrebleu's {@code corpus_score}). */
        MICRO
    }
}
