package dev.collie.models.eval;

import java.util.List;
import java.util.Objects;

/**
 * One evaluation example. For perplexity and generation: an {@code input} (empty for a plain text) and its
 * {@code outputs} (the text scored after the input, or the references a generation is compared with); for
 * classification: an {@code input}, its {@code options} and the index of the right one, {@code target}.
 *
 * @param input   the prompt ("" for none)
 * @param outputs the output texts (at least one for perplexity and generation; empty for classification)
 * @param options the options of a classification example (empty otherwise)
 * @param target  the index of the right option (-1 when there are no options)
 * @param source  where the example came from ({@code file:line}), for error messages
 */
public record EvalExample(String input, List<String> outputs, List<String> options, int target, String source) {
    public EvalExample {
        Objects.requireNonNull(input, "input");
        outputs = List.copyOf(outputs);
        options = List.copyOf(options);
        if (options.isEmpty() ? target != -1 : target < 0 || target >= options.size()) {
            throw new IllegalArgumentException("target " + target + " is not an index of the " + options.size()
                    + " options");
        }
        source = source == null ? "example" : source;
    }

    /** A plain text, scored whole (perplexity). */
    public static EvalExample text(String text) {
        return new EvalExample("", List.of(text), List.of(), -1, null);
    }

    /** An input and its output (perplexity of the output after the input, or generation with one reference). */
    public static EvalExample inputOutput(String input, String output) {
        return new EvalExample(input, List.of(output), List.of(), -1, null);
    }

    /** A classification example: {@code options.get(target)} is right. */
    public static EvalExample classification(String input, List<String> options, int target) {
        return new EvalExample(input, List.of(), options, target, null);
    }
}
