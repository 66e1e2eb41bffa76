package dev.collie.core.train.monitor;

import dev.collie.core.CollieException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * CSV files in a directory, one per group: {@code metrics.csv} for the training steps, {@code <group>.csv} for
 * another ({@code eval.csv}). A header row ({@code step,wall_time,} then the values' names, from the group's first
 * record), then one row per record. A file that is already there is continued when its header is the same, refused
 * otherwise. A later record's values go under the header's names: one it lacks leaves its field empty, one the
 * header lacks is left out (warned once).
 */
public final class CsvSink implements MonitorSink {
    /** The training steps' file. */
    public static final String FILE = "metrics.csv";
    private static final Logger LOG = LoggerFactory.getLogger(CsvSink.class);

    private final Path dir;
    private final Map<String, Table> tables = new HashMap<>();

    /** Writes into {@code dir} (created at the first write). */
    public CsvSink(Path dir) {
        this.dir = dir;
    }

    /** The file of {@code group}'s records. */
    public static String fileOf(String group) {
        return group.equals("train") ? FILE : group + ".csv";
    }

    @Override
    public void write(Scalars r) {
        Table t = tables.computeIfAbsent(r.group(), g -> new Table(new AppendFile(dir.resolve(fileOf(g)), true),
                List.copyOf(r.values().keySet())));
        t.write(r);
    }

    @Override
    public void close() {
        tables.values().forEach(t -> t.file.close());
    }

    /** One group's file and its columns. */
    private static final class Table {
        private final AppendFile file;
        private final List<String> columns;
        private final Set<String> warned = new LinkedHashSet<>();
        private boolean headerChecked;

        Table(AppendFile file, List<String> columns) {
            this.file = file;
            this.columns = columns;
        }

        void write(Scalars r) {
            StringBuilder line = new StringBuilder();
            if (!headerChecked) {
                file.open();
                String header = header();
                String existing = firstLine();
                if (existing == null) {
                    line.append(header).append('\n');
                } else if (!existing.equals(header)) {
                    throw new CollieException(file.path() + ": its columns (" + existing + ") are not this run's ("
                            + header + "): give the monitor another directory");
                }
                headerChecked = true;
            }
            for (String k : r.values().keySet()) {
                if (!columns.contains(k) && warned.add(k)) {
                    LOG.warn("{}: '{}' is not one of its columns; it is left out (the other files have it)",
                            file.path(), k);
                }
            }
            line.append(r.step()).append(',').append(Scalars.format(r.wallTime()));
            for (String c : columns) {
                Double v = r.values().get(c);
                line.append(',').append(v == null ? "" : Scalars.format(v));
            }
            file.write(line.append('\n').toString());
        }

        private String header() {
            List<String> names = new ArrayList<>(List.of("step", "wall_time"));
            names.addAll(columns);
            StringBuilder h = new StringBuilder();
            for (String n : names) {
                h.append(h.length() == 0 ? "" : ",").append(field(n));
            }
            return h.toString();
        }

        /** The file's first line, or null when it is empty or missing. */
        private String firstLine() {
            if (file.size() == 0) {
                return null;
            }
            try (BufferedReader in = Files.newBufferedReader(file.path(), StandardCharsets.UTF_8)) {
                return in.readLine();
            } catch (IOException e) {
                throw new CollieException(file.path() + ": cannot read its header: " + e, e);
            }
        }
    }

    /** A name as a CSV field: quoted when it holds a comma, a quote or a line break. */
    private static String field(String s) {
        return s.matches("[^,\"\\r\\n]*") ? s : "\"" + s.replace("\"", "\"\"") + "\"";
    }
}
