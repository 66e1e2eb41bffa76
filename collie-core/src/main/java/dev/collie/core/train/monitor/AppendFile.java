package dev.collie.core.train.monitor;

import dev.collie.core.CollieException;
import dev.collie.core.io.AtomicFiles;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A log file the sinks append to: opened (and its directory created) at the first write, each write handed to the
 * operating system whole before it returns (no buffer in between), closed and opened again on demand. Errors name
 * the file.
 */
final class AppendFile implements AutoCloseable {
    private final Path file;
    private final boolean lines;
    private FileChannel channel;

    /**
     * {@code lines}: a text file of whole lines, whose torn last line (a crash in the middle of a write) is cut off
     * when it is opened, so that the next line starts clean.
     */
    AppendFile(Path file, boolean lines) {
        this.file = file;
        this.lines = lines;
    }

    Path path() {
        return file;
    }

    /** The file's length now, 0 when it does not exist. */
    long size() {
        try {
            return channel != null ? channel.size() : Files.exists(file) ? Files.size(file) : 0;
        } catch (IOException e) {
            throw new CollieException(file + ": cannot read its size: " + e, e);
        }
    }

    void write(String text) {
        write(ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)));
    }

    void write(ByteBuffer bytes) {
        open();
        try {
            AtomicFiles.writeFully(channel, bytes);
        } catch (IOException e) {
            throw new CollieException(file + ": cannot write: " + e, e);
        }
    }

    /** Opens the file for appending (creating it and its directory) unless it is open. */
    void open() {
        if (channel != null) {
            return;
        }
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            if (lines) {
                cutTornLine();
            }
            channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new CollieException(file + ": cannot open for writing: " + e, e);
        }
    }

    /** Truncates the file after its last newline (to nothing when it has none). */
    private void cutTornLine() throws IOException {
        if (!Files.exists(file)) {
            return;
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long end = ch.size();
            ByteBuffer one = ByteBuffer.allocate(1);
            while (end > 0) {
                one.clear();
                ch.read(one, end - 1);
                if (one.get(0) == '\n') {
                    break;
                }
                end--;
            }
            if (end < ch.size()) {
                ch.truncate(end);
            }
        }
    }

    @Override
    public void close() {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException e) {
                throw new CollieException(file + ": cannot close: " + e, e);
            } finally {
                channel = null;
            }
        }
    }
}
