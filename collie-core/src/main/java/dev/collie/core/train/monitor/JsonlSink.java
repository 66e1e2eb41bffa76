package dev.collie.core.train.monitor;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.file.Path;
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

    @Override
    public void close() {
        file.close();
    }

    /** The file written. */
    public Path path() {
        return file.path();
    }
}
