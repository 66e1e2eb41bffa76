package dev.collie.models.eval;

import dev.collie.core.CollieException;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * What an {@link Evaluator} does with each example, and the metrics it reports when none are named.
 * <ul>
 *   <li>{@code PPL}: the next-token loss of the text (of the output only, after an input), summed over tokens;
 *       metric {@code ppl} ({@code perplexity} and {@code loss}).</li>
 *   <li>{@code GENERATION}: greedy generation from the input, the new tokens decoded into a prediction that is
 *       scored against the output(s); metrics {@code bleu} and {@code rouge}.</li>
 *   <li>{@code CLASSIFICATION_HARNESS}: the mean loss of each option's tokens after the input; the prediction is
 *       the option with the smallest; metric {@code accuracy}.</li>
 *   <li>{@code CLASSIFICATION_HELM}: a few greedy tokens from the input; the prediction is the option whose
 *       normalised text the normalised output starts with ({@link Evaluator#normalise}); metric {@code accuracy}.</li>
 * </ul>
 */
public enum EvalTask {
    PPL("ppl", "ppl"),
    GENERATION("generation", "bleu", "rouge"),
    CLASSIFICATION_HARNESS("classification", "accuracy"),
    CLASSIFICATION_HELM("classification-helm", "accuracy");

    private final String cliName;
    private final List<String> defaultMetrics;

    EvalTask(String cliName, String... defaultMetrics) {
        this.cliName = cliName;
        this.defaultMetrics = List.of(defaultMetrics);
    }

    /** The name {@code collie eval --task} takes. */
    public String cliName() {
        return cliName;
    }

    /** The metrics reported when none are named. */
    public List<String> defaultMetrics() {
        return defaultMetrics;
    }

    /** Whether examples are classification examples ({@code input}, {@code options}, {@code target}). */
    public boolean classification() {
        return this == CLASSIFICATION_HARNESS || this == CLASSIFICATION_HELM;
    }

    /**
     * The task of a {@link #cliName()} (case-insensitive).
     *
     * @throws CollieException for an unknown name, listing the known ones
     */
    public static EvalTask parse(String name) {
        String key = name == null ? "" : name.strip().toLowerCase(Locale.ROOT);
        return Arrays.stream(values()).filter(t -> t.cliName.equals(key)).findFirst()
                .orElseThrow(() -> new CollieException("unknown task '" + name + "'; known: "
                        + Arrays.stream(values()).map(EvalTask::cliName).collect(Collectors.joining(", "))));
    }
}
