package dev.collie.core.eval;

import dev.collie.core.CollieException;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Splits a decoded text into the words BLEU and ROUGE count n-grams of (CoLLiE's {@code split_fn}). Three are
 * built in, by name:
 * <ul>
 *   <li>{@code whitespace} ({@link #WHITESPACE}): Python's {@code str.split()}, CoLLiE's default for BLEU — runs of
 *       white space (Python's set: Java's {@link Character#isWhitespace} plus U+0085, U+00A0, U+2007 and U+202F)
 *       separate words; nothing is lower-cased or split off.</li>
 *   <li>{@code 13a} ({@link #SACREBLEU_13A}): sacrebleu's default {@code 13a} tokenizer (mteval-v13a, used by WMT),
 *       as sacrebleu's BLEU applies it: trailing white space stripped, {@code <skipped>} and a hyphen at a line end
 *       removed, line breaks made spaces, {@code &quot; &amp; &lt; &gt;} unescaped, then punctuation and symbols
 *       split off, periods and commas unless inside a number, and a dash after a digit.</li>
 *   <li>{@code rouge} ({@link #ROUGE}): the normalisation of torchmetrics' {@code ROUGEScore} and Google's
 *       {@code rouge_score} by default: lower case, then every run of characters outside {@code [a-z0-9]} is a
 *       separator (punctuation and non-ASCII letters are dropped: "café" gives "caf").</li>
 * </ul>
 */
@FunctionalInterface
public interface TextTokenizer {
    /** Python's {@code str.split()}. */
    TextTokenizer WHITESPACE = Tokenizers::whitespace;
    /** sacrebleu's {@code 13a}. */
    TextTokenizer SACREBLEU_13A = Tokenizers::thirteenA;
    /** torchmetrics' ROUGE normalisation. */
    TextTokenizer ROUGE = Tokenizers::rouge;

    /** The words of {@code text}, none empty. */
    List<String> tokenize(String text);

    /**
     * The built-in tokenizer called {@code name} ({@code whitespace}, {@code 13a} or {@code rouge}).
     *
     * @throws CollieException for another name, listing the known ones
     */
    static TextTokenizer named(String name) {
        Map<String, TextTokenizer> known = Map.of("whitespace", WHITESPACE, "13a", SACREBLEU_13A, "rouge", ROUGE);
        TextTokenizer t = known.get(name.toLowerCase(Locale.ROOT));
        if (t == null) {
            throw new CollieException("unknown tokenizer '" + name + "'; known: 13a, rouge, whitespace");
        }
        return t;
    }
}
