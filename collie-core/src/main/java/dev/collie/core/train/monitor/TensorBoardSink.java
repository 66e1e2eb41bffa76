package dev.collie.core.train.monitor;

import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.DoubleSupplier;

/**
 * A TensorBoard event file, {@code events.out.tfevents.<seconds>.<host>.<pid>.<n>} in the directory (TensorBoard
 * reads every such file of a run directory): a {@code file_version} event, then one scalar event per value of
 * each record, tagged {@code group/name} ({@code train/loss}) at the record's step and wall time, as PyTorch's and
 * tensorboardX's {@code add_scalar} write them. A record's events reach the operating system in one write. The
 * format is encoded by {@link EventRecords}; see docs/design-notes.md for why no library writes it.
 */
public final class TensorBoardSink implements MonitorSink {
    private static final AtomicInteger FILES = new AtomicInteger();

    /** What the first event says wrote the file ({@code source_metadata.writer}). */
    static final String WRITER = "collie-java";

    private final AppendFile file;
    private final DoubleSupplier clock;
    private final String writer;

    /** A new event file in {@code dir}, named now (created at the first write). */
    public TensorBoardSink(Path dir) {
        this(dir.resolve(fileName(System.currentTimeMillis() / 1000)), TensorBoardSink::now, WRITER);
    }

    /**
     * Writes {@code file}, its {@code file_version} event stamped with {@code clock}'s seconds and naming
     * {@code writer}.
     */
    TensorBoardSink(Path file, DoubleSupplier clock, String writer) {
        this.file = new AppendFile(file, false);
        this.clock = clock;
        this.writer = writer;
    }

    /** {@code events.out.tfevents.<seconds>.<host>.<pid>.<n>}, unique among this host's writers. */
    static String fileName(long seconds) {
        return "events.out.tfevents." + seconds + "." + host() + "." + ProcessHandle.current().pid() + "."
                + FILES.getAndIncrement();
    }

    private static String host() {
        String h = System.getenv("HOSTNAME");
        if (h == null || h.isBlank()) {
            try {
                h = InetAddress.getLocalHost().getHostName();
            } catch (UnknownHostException e) {
                h = "localhost";
            }
        }
        return h.replaceAll("[^A-Za-z0-9._-]", "_");
    }

    private static double now() {
        return System.currentTimeMillis() / 1000.0;
    }

    /** The event file written. */
    public Path path() {
        return file.path();
    }

    /** Writes the record's events in one write, after the file_version event when the file is new. */
    @Override
    public void write(Scalars r) {
        List<ByteBuffer> frames = new ArrayList<>();
        if (file.size() == 0) {
            frames.add(EventRecords.frame(EventRecords.fileVersion(clock.getAsDouble(), writer)));
        }
        for (Map.Entry<String, Double> e : r.values().entrySet()) {
            frames.add(EventRecords.frame(EventRecords.scalar(r.wallTime(), r.step(), r.tag(e.getKey()),
                    e.getValue())));
        }
        ByteBuffer all = ByteBuffer.allocate(frames.stream().mapToInt(ByteBuffer::remaining).sum());
        frames.forEach(all::put);
        file.write(all.flip());
    }

    @Override
    public void close() {
        file.close();
    }
}
