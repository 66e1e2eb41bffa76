package dev.collie.core.train.monitor;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CSV and JSONL sinks: header and rows, continuing a file, a torn last line, values spelled exactly. */
class CsvAndJsonlSinkTest {
    private static Scalars train(long step, double loss, double gradNorm) {
        Map<String, Double> v = new LinkedHashMap<>();
        v.put("loss", loss);
        v.put("lr", 1e-5);
        v.put("grad_norm", gradNorm);
        v.put("tokens", 4096.0);
        return new Scalars("train", step, 1733500000.5 + step, v);
    }

    private static Scalars eval(long step, Map<String, Double> v) {
        return new Scalars("eval", step, 1733500100.25, v);
    }

    @Test
    void csvHasAHeaderThenARowPerRecordAndAFilePerGroup(@TempDir Path dir) throws IOException {
        try (CsvSink csv = new CsvSink(dir)) {
            csv.write(train(1, 2.5, Double.NaN));
            csv.write(train(2, 0.1, 1.75));
            csv.write(eval(2, new LinkedHashMap<>(Map.of("loss", 2.0))));
            // a later evaluation without a column leaves it empty; one with another is cut to the header's
            Map<String, Double> more = new LinkedHashMap<>();
            more.put("acc", 0.5);
            csv.write(eval(3, more));
        }
        assertEquals(List.of("step,wall_time,loss,lr,grad_norm,tokens",
                        "1,1733500001.5,2.5,1.0E-5,NaN,4096",
                        "2,1733500002.5,0.1,1.0E-5,1.75,4096"),
                Files.readAllLines(dir.resolve("metrics.csv")));
        assertEquals(List.of("step,wall_time,loss", "2,1733500100.25,2", "3,1733500100.25,"),
                Files.readAllLines(dir.resolve("eval.csv")));
    }

    @Test
    void aResumedRunContinuesTheFileAndAnotherRunsColumnsAreRefused(@TempDir Path dir) throws IOException {
        try (CsvSink csv = new CsvSink(dir)) {
            csv.write(train(1, 2.5, 1.0));
        }
        // a crash in the middle of a row: the torn row is cut before the next one
        Files.writeString(dir.resolve("metrics.csv"), "2,17335", StandardOpenOption.APPEND);
        try (CsvSink csv = new CsvSink(dir)) {
            csv.write(train(2, 2.25, 1.0));
        }
        List<String> lines = Files.readAllLines(dir.resolve("metrics.csv"));
        assertEquals(3, lines.size(), lines.toString());
        assertTrue(lines.get(2).startsWith("2,1733500002.5,2.25,"), lines.get(2));
        Map<String, Double> other = new LinkedHashMap<>(Map.of("loss", 1.0));
        CollieException e = assertThrows(CollieException.class,
                () -> new CsvSink(dir).write(new Scalars("train", 3, 0, other)));
        assertEquals(dir.resolve("metrics.csv") + ": its columns (step,wall_time,loss,lr,grad_norm,tokens) are not"
                + " this run's (step,wall_time,loss): give the monitor another directory", e.getMessage());
    }

    @Test
    void jsonlHasAnObjectPerLineKeyedByTensorBoardTags(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("m/metrics.jsonl");
        try (JsonlSink jsonl = new JsonlSink(file)) {
            jsonl.write(train(7, 0.1, Double.NaN));
            jsonl.write(eval(7, new LinkedHashMap<>(Map.of("ppl", 12.5))));
        }
        Files.writeString(file, "{\"step\": 8, \"wa", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
        try (JsonlSink jsonl = new JsonlSink(file)) {
            jsonl.write(train(8, 3e-4, 2.0));
        }
        List<String> lines = Files.readAllLines(file);
        assertEquals("{\"step\":7,\"wall_time\":1733500007.5,\"train/loss\":0.1,\"train/lr\":1.0E-5,"
                + "\"train/grad_norm\":null,\"train/tokens\":4096}", lines.get(0));
        assertEquals(3, lines.size(), lines.toString());
        ObjectMapper json = new ObjectMapper();
        JsonNode evalLine = json.readTree(lines.get(1));
        assertEquals(12.5, evalLine.get("eval/ppl").doubleValue());
        JsonNode last = json.readTree(lines.get(2));
        assertEquals(8, last.get("step").longValue());
        assertEquals(3e-4, last.get("train/loss").doubleValue());   // the digits round-trip
    }

    @Test
    void jsonlReadsBackAsTheRecordsWrittenLeavingOutALineInProgress(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("metrics.jsonl");
        Scalars a = train(1, 2.5, Double.NaN);
        Scalars b = eval(1, new LinkedHashMap<>(Map.of("ppl", 12.5)));
        try (JsonlSink jsonl = new JsonlSink(file)) {
            jsonl.write(a);
            jsonl.write(b);
        }
        Files.writeString(file, "{\"step\": 2, \"wa", StandardOpenOption.APPEND);     // being written now
        assertEquals(List.of(a, b), JsonlSink.read(file));
        Files.writeString(file, "\n{\"step\": 3}\n", StandardOpenOption.APPEND);
        CollieException e = assertThrows(CollieException.class, () -> JsonlSink.read(file));
        assertEquals(file + ":3: not JSON: Unexpected end-of-input in field name", e.getMessage());
    }

    @Test
    void anUnknownSinkNameListsTheKnownOnes(@TempDir Path dir) {
        CollieException e = assertThrows(CollieException.class, () -> MonitorSink.named("tensorbord", dir));
        assertEquals("unknown monitor 'tensorbord'; known: csv, jsonl, tensorboard", e.getMessage());
        assertEquals("monitor every: must be at least 1, got 0",
                assertThrows(CollieException.class, () -> new MonitorConfig(dir, List.of("csv"), 0, false).validate())
                        .getMessage());
        assertEquals("monitor sinks: csv,jsonl,csv names one twice", assertThrows(CollieException.class,
                () -> new MonitorConfig(dir, List.of("csv", "jsonl", "csv"), 1, false).validate()).getMessage());
    }
}
