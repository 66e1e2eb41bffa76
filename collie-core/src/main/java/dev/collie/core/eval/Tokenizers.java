package dev.collie.core.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/** The built-in {@link TextTokenizer}s. */
final class Tokenizers {
    // sacrebleu's TokenizerRegexp, in order: symbols and punctuation other than . , - and the letters and digits;
    // a period or comma after a non-digit; one before a non-digit; a dash after a digit
    private static final Pattern SYMBOL = Pattern.compile("([{-~\\[-` -&(-+:-@/])");
    private static final Pattern PERIOD_AFTER_NON_DIGIT = Pattern.compile("([^0-9])([.,])");
    private static final Pattern PERIOD_BEFORE_NON_DIGIT = Pattern.compile("([.,])([^0-9])");
    private static final Pattern DASH_AFTER_DIGIT = Pattern.compile("([0-9])(-)");
    private static final Pattern NOT_ALNUM = Pattern.compile("[^a-z0-9]+");

    private Tokenizers() {
    }

    /** Python's {@code str.split()}: the runs of non-space characters. */
    static List<String> whitespace(String text) {
        List<String> words = new ArrayList<>();
        int start = -1;
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            if (isPythonSpace(cp)) {
                if (start >= 0) {
                    words.add(text.substring(start, i));
                    start = -1;
                }
            } else if (start < 0) {
                start = i;
            }
            i += Character.charCount(cp);
        }
        if (start >= 0) {
            words.add(text.substring(start));
        }
        return words;
    }

    /** sacrebleu's {@code 13a}, after the {@code rstrip()} its BLEU applies first. */
    static List<String> thirteenA(String text) {
        String line = rstrip(text).replace("<skipped>", "").replace("-\n", "").replace("\n", " ");
        if (line.indexOf('&') >= 0) {
            line = line.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
        }
        line = SYMBOL.matcher(" " + line + " ").replaceAll(" $1 ");
        line = PERIOD_AFTER_NON_DIGIT.matcher(line).replaceAll("$1 $2 ");
        line = PERIOD_BEFORE_NON_DIGIT.matcher(line).replaceAll(" $1 $2");
        line = DASH_AFTER_DIGIT.matcher(line).replaceAll("$1 $2 ");
        return whitespace(line);
    }

    /** torchmetrics' ROUGE default: lower case, {@code [^a-z0-9]+} separates. */
    static List<String> rouge(String text) {
        return whitespace(NOT_ALNUM.matcher(text.toLowerCase(Locale.ROOT)).replaceAll(" "));
    }

    private static String rstrip(String s) {
        int end = s.length();
        while (end > 0) {
            int cp = s.codePointBefore(end);
            if (!isPythonSpace(cp)) {
                break;
            }
            end -= Character.charCount(cp);
        }
        return s.substring(0, end);
    }

    /** Python's {@code str.isspace()} for one character. */
    private static boolean isPythonSpace(int cp) {
        return Character.isWhitespace(cp) || cp == 0x85 || cp == 0xA0 || cp == 0x2007 || cp == 0x202F;
    }
}
