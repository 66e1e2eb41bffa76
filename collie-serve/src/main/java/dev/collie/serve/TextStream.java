package dev.collie.serve;

import dev.collie.models.generation.Generator;

import java.util.List;

/**
 * The text of one growing completion, handed out in pieces: {@link #next} takes the decoded text of all tokens so far
 * and returns what is new and safe to send. It holds back a trailing U+FFFD (the first bytes of a character whose
 * last bytes are still to come), half of a surrogate pair, and a tail that could be the start of a stop string; text
 * from a stop string on is never sent. So the pieces add up to {@code Generator.cutAtStop(text, stops)} of the whole
 * completion, which {@link #finish} completes.
 */
final class TextStream {
    private final List<String> stops;
    private String sent = "";

    TextStream(List<String> stops) {
        this.stops = List.copyOf(stops);
    }

    /** The new text of {@code text} (all tokens so far, decoded) that can be sent now; empty if none. */
    String next(String text) {
        String cut = Generator.cutAtStop(text, stops);
        return take(text, cut.length() < text.length() ? cut.length() : safeLength(text));
    }

    /** What is left to send of the completion's final text ({@code cutAtStop} of all its tokens' text). */
    String finish(String finalText) {
        return take(finalText, finalText.length());
    }

    /** Everything sent so far. */
    String sent() {
        return sent;
    }

    private String take(String text, int upTo) {
        // a tokenizer whose text of fewer tokens is not a prefix of the text of more (rare) sends nothing more
        if (upTo <= sent.length() || !text.startsWith(sent)) {
            return "";
        }
        String piece = text.substring(sent.length(), upTo);
        sent = text.substring(0, upTo);
        return piece;
    }

    /** How much of {@code text} is sure to stay: without a trailing U+FFFD, lone high surrogate or stop prefix. */
    private int safeLength(String text) {
        int n = text.length();
        while (n > 0 && text.charAt(n - 1) == '\uFFFD') {
            n--;
        }
        if (n > 0 && Character.isHighSurrogate(text.charAt(n - 1))) {
            n--;
        }
        int safe = n;
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, n); k > 0; k--) {
                if (text.regionMatches(n - k, s, 0, k)) {
                    safe = Math.min(safe, n - k);
                    break;
                }
            }
        }
        return safe;
    }
}
