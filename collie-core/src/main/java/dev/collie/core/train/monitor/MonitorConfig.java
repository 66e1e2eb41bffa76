package dev.collie.core.train.monitor;

import dev.collie.core.CollieException;

import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;

/**
 * What a {@link Monitor} writes and where: the {@code sinks} by name ({@code csv}, {@code jsonl},
 * {@code tensorboard}) into {@code dir}, every {@code every} steps (and the last), and, with {@code dashboard},
 * {@code dir/dashboard.png} at the end of training. {@link #validate()} names the offending field.
 */
public record MonitorConfig(Path dir, List<String> sinks, int every, boolean dashboard) {
    /** The dashboard's file name in {@link #dir}. */
    public static final String DASHBOARD = "dashboard.png";

    /** Keeps the sink names in their order. */
    public MonitorConfig {
        sinks = List.copyOf(sinks);
    }

    /** All three sinks every step, with the dashboard. */
    public static MonitorConfig all(Path dir) {
        return new MonitorConfig(dir, MonitorSink.KNOWN, 1, true);
    }

    /** Checks every field; the message names it. Returns this. */
    public MonitorConfig validate() {
        if (dir == null) {
            throw new CollieException("monitor dir: give the directory the monitor writes into");
        }
        if (sinks.isEmpty()) {
            throw new CollieException("monitor sinks: give at least one of " + String.join(", ", MonitorSink.KNOWN));
        }
        sinks.forEach(MonitorSink::checkName);
        if (new LinkedHashSet<>(sinks).size() < sinks.size()) {
            throw new CollieException("monitor sinks: " + String.join(",", sinks) + " names one twice");
        }
        if (every < 1) {
            throw new CollieException("monitor every: must be at least 1, got " + every);
        }
        return this;
    }

    /** The dashboard's path, or null without one. */
    public Path dashboardFile() {
        return dashboard ? dir.resolve(DASHBOARD) : null;
    }

    /** A new sink for each name, writing into {@link #dir}. */
    public List<MonitorSink> createSinks() {
        return sinks.stream().map(n -> MonitorSink.named(n, dir)).toList();
    }
}
