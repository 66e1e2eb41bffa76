package dev.collie.core.eval;

import dev.collie.core.CollieException;

import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * Metrics by name, so a command line or a config can ask for them ({@code "bleu"}) and a wrong name is answered
 * with the known ones. {@link #withBuiltIns()} knows {@code accuracy}, {@code bleu} (CoLLiE's defaults),
 * {@code decode} (logs), {@code f1} (precision/recall/F1), {@code perplexity} and {@code rouge}; add your own with
 * {@link #register}. Names are case-insensitive.
 */
public final class MetricRegistry {
    private final Map<String, Supplier<? extends Metric>> factories = new TreeMap<>();

    /** A registry that knows no metric. */
    public MetricRegistry() {
    }

    /** A registry with the built-in metrics in their default settings. */
    public static MetricRegistry withBuiltIns() {
        return new MetricRegistry()
                .register("accuracy", AccuracyMetric::new)
                .register("bleu", BleuMetric::new)
                .register("decode", DecodeMetric::new)
                .register("f1", ClassificationMetric::new)
                .register("perplexity", PerplexityMetric::new)
                .register("rouge", RougeMetric::new);
    }

    /**
     * Makes {@code factory} known as {@code name}; returns this registry.
     *
     * @throws IllegalArgumentException when the name is blank or already taken
     */
    public MetricRegistry register(String name, Supplier<? extends Metric> factory) {
        String key = key(name);
        if (key.isEmpty() || factory == null) {
            throw new IllegalArgumentException("a metric needs a name and a factory");
        }
        if (factories.putIfAbsent(key, factory) != null) {
            throw new IllegalArgumentException("a metric named '" + key + "' is already registered");
        }
        return this;
    }

    /**
     * A new metric of the kind registered as {@code name}.
     *
     * @throws CollieException for an unknown name, listing the known ones
     */
    public Metric create(String name) {
        Supplier<? extends Metric> f = factories.get(key(name));
        if (f == null) {
            throw new CollieException("unknown metric '" + name + "'; known: " + String.join(", ", names()));
        }
        return f.get();
    }

    /** The known names, sorted. */
    public List<String> names() {
        return List.copyOf(factories.keySet());
    }

    private static String key(String name) {
        return name == null ? "" : name.strip().toLowerCase(Locale.ROOT);
    }
}
