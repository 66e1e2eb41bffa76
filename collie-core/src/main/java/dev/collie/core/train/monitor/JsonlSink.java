package dev.collie.core.train.monitor;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.CollieException;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One JSON object a line, one line a record: {@code {"step": 20, "wall_time": 1733571234.5, "train/loss": 2.31,
 * "train/lr": 0.001, ...}}, the values under their TensorBoard tags. A value that is not finite (a gradient norm
 * that was not computed) is {@code null}, as strict JSON has no NaN.
 */
public final class JsonlSink implements MonitorSink {
    /** The file name in the monitor's directory. */
    public static final String FILE = "metrics.jsonl";
    private static final JsonFactory JSON = new JsonFactory();
    private static final ObjectMapper MAPPER = new ObjectMapper(JSON);

    private final AppendFile file;

    /** Appends to {@code file} (created at the first write). */
    public JsonlSink(Path file) {
        this.file = new AppendFile(file, true);
    }

    @Override
    public void write(Scalars r) {
        file.write(line(r) + "\n");
    }

    /** {@code r} as one JSON object on one line, without the newline. */
    static String line(Scalars r) {
        StringWriter out = new StringWriter();
        try (JsonGenerator g = JSON.createGenerator(out)) {
            g.writeStartObject();
            g.writeNumberField("step", r.step());
            g.writeFieldName("wall_time");
            g.writeNumber(Scalars.format(r.wallTime()));
            for (Map.Entry<String, Double> e : r.values().entrySet()) {
                double v = e.getValue();
                g.writeFieldName(r.tag(e.getKey()));
                if (Double.isFinite(v)) {
                    g.writeNumber(Scalars.format(v));
                } else {
                    g.writeNull();
                }
            }
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);     // a StringWriter does not fail
        }
        return out.toString();
    }

    /**
     * The records of a file this sink wrote, in order: each line's values grouped by their tag's prefix
     * ({@code train/loss} → group {@code train}, value {@code loss}; {@code null} → NaN). A last line without its
     * newline (a run writing it just now) is left out.
     *
     * @throws CollieException naming the file and line when a line is not such an object
     */
    public static List<Scalars> read(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new CollieException(file + ": cannot read: " + e, e);
        }
        List<String> lines = List.of(text.split("\n", -1));
        List<Scalars> out = new ArrayList<>();
        for (int i = 0; i < lines.size() - 1; i++) {            // the part after the last newline is not a line yet
            if (!lines.get(i).isBlank()) {
                out.addAll(parse(file, i + 1, lines.get(i)));
            }
        }
        return out;
    }

    private static List<Scalars> parse(Path file, int lineNo, String line) {
        try {
            JsonNode n = MAPPER.readTree(line);
            if (n == null || !n.isObject() || !n.path("step").canConvertToLong() || !n.path("wall_time").isNumber()) {
                throw new CollieException(file + ":" + lineNo + ": not a monitor record (an object with \"step\","
                        + " \"wall_time\" and \"<group>/<name>\" values)");
            }
            Map<String, Map<String, Double>> groups = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                int slash = e.getKey().indexOf('/');
                if (slash < 0) {
                    continue;                                   // step, wall_time
                }
                JsonNode v = e.getValue();
                if (!v.isNumber() && !v.isNull()) {
                    throw new CollieException(file + ":" + lineNo + ": " + e.getKey() + " is not a number");
                }
                groups.computeIfAbsent(e.getKey().substring(0, slash), g -> new LinkedHashMap<>())
                        .put(e.getKey().substring(slash + 1), v.isNull() ? Double.NaN : v.doubleValue());
            }
            List<Scalars> out = new ArrayList<>();
            groups.forEach((g, values) -> out.add(new Scalars(g, n.get("step").longValue(),
                    n.get("wall_time").doubleValue(), values)));
            return out;
        } catch (JsonProcessingException e) {
            throw new CollieException(file + ":" + lineNo + ": not JSON: " + e.getOriginalMessage(), e);
        }
    }

    @Override
    public void close() {
        file.close();
    }

    /** The file written. */
    public Path path() {
        return file.path();
    }
}
