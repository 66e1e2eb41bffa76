package dev.collie.core.train.monitor;

import dev.collie.core.CollieException;

import java.nio.file.Path;
import java.util.List;

/**
 * Where a {@link Monitor} writes its {@link Scalars}: one file format. A sink opens its files at its first write,
 * appending to what is there (a resumed run continues them), and hands every record to the operating system
 * before {@link #write} returns, so a crash loses at most the record being written. {@link #close} releases the
 * files; a later write opens them again.
 */
public interface MonitorSink extends AutoCloseable {
    /** The sink names {@link #named} knows, in the order of its error message. */
    List<String> KNOWN = List.of("csv", "jsonl", "tensorboard");

    /** Writes one record (and flushes it). */
    void write(Scalars record);

    /** Releases the open files, if any. */
    @Override
    void close();

    /**
     * The sink {@code name} writing into {@code dir}: {@code csv} ({@link CsvSink}), {@code jsonl} ({@link JsonlSink})
     * or {@code tensorboard} ({@link TensorBoardSink}).
     *
     * @throws CollieException for another name, listing the known ones
     */
    static MonitorSink named(String name, Path dir) {
        return switch (checkName(name)) {
            case "csv" -> new CsvSink(dir);
            case "jsonl" -> new JsonlSink(dir.resolve(JsonlSink.FILE));
            default -> new TensorBoardSink(dir);
        };
    }

    /** Returns {@code name} when it is a {@link #KNOWN} sink; refuses another, listing them. */
    static String checkName(String name) {
        if (!KNOWN.contains(name)) {
            throw new CollieException("unknown monitor '" + name + "'; known: " + String.join(", ", KNOWN));
        }
        return name;
    }
}
