package dev.collie.core.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.dist.SingleProcessCommunicator;
import dev.collie.core.testing.MetricFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

class DecodeMetricTest {
    @Test
    void writesEveryPredictionAsJsonl(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("sub/predictions.jsonl");
        DecodeMetric m = new DecodeMetric(out, false);
        m.update(EvalBatch.ofTexts(List.of("héllo \"world\"", ""), List.of(List.of("a", "b\nc"), List.of("d"))));
        m.update(EvalBatch.ofTexts(List.of("no references"), null));
        m.gather(new SingleProcessCommunicator());
        assertEquals(3.0, m.get().get("decoded"));
        List<String> lines = Files.readAllLines(out, StandardCharsets.UTF_8);
        assertEquals(3, lines.size());
        ObjectMapper json = new ObjectMapper();
        JsonNode first = json.readTree(lines.get(0));
        assertEquals("héllo \"world\"", first.get("prediction").asText());
        assertEquals(List.of("a", "b\nc"), MetricFixtures.strings(first.get("references")));
        assertEquals("", json.readTree(lines.get(1)).get("prediction").asText());
        assertFalse(json.readTree(lines.get(2)).has("references"));
        m.reset();
        m.update(EvalBatch.ofTexts(List.of("again"), null));
        m.get();
        assertEquals(List.of("{\"prediction\":\"again\"}"), Files.readAllLines(out, StandardCharsets.UTF_8));
    }
}
