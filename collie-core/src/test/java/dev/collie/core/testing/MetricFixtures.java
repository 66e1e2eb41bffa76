package dev.collie.core.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The fixtures of {@code tools/reference/make_metric_fixtures.py} (nltk, sacrebleu, torchmetrics and the definition
 * of F1), read from {@code fixtures/metrics/} on the test class path (collie-core's test jar for other modules).
 */
public final class MetricFixtures {
    /** How close every metric must come to its reference. */
    public static final double PARITY = 1e-6;

    private static JsonNode text;
    private static JsonNode classification;

    private MetricFixtures() {
    }

    public static synchronized JsonNode text() {
        if (text == null) {
            text = read("text.json");
        }
        return text;
    }

    public static synchronized JsonNode classification() {
        if (classification == null) {
            classification = read("classification.json");
        }
        return classification;
    }

    /** The predictions of every pair in {@code text.json}. */
    public static List<String> predictions() {
        List<String> out = new ArrayList<>();
        text().get("pairs").forEach(p -> out.add(p.get("prediction").asText()));
        return out;
    }

    /** The references of every pair in {@code text.json}. */
    public static List<List<String>> references() {
        List<List<String>> out = new ArrayList<>();
        text().get("pairs").forEach(p -> out.add(strings(p.get("references"))));
        return out;
    }

    public static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(s -> out.add(s.asText()));
        return out;
    }

    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    private static JsonNode read(String name) {
        try (InputStream in = MetricFixtures.class.getResourceAsStream("/fixtures/metrics/" + name)) {
            if (in == null) {
                throw new IllegalStateException("fixtures/metrics/" + name + " is not on the test class path");
            }
            return new ObjectMapper().readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
