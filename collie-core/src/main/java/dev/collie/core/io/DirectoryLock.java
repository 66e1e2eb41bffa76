package dev.collie.core.io;

import dev.collie.core.CollieException;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One run at a time writes a directory (a model's {@code --save}, a checkpoint folder): an OS lock on
 * {@code .<name>.lock} beside it, holding the owner's pid, host and start time. A second run, in this JVM or
 * another process, is refused naming the first; the lock goes with the owner when it closes it or dies.
 */
public final class DirectoryLock implements AutoCloseable {
    private static final Set<Path> HELD = ConcurrentHashMap.newKeySet();   // OS locks are per process

    private final Path dir;
    private final FileChannel channel;
    private final FileLock lock;

    private DirectoryLock(Path dir, FileChannel channel, FileLock lock) {
        this.dir = dir;
        this.channel = channel;
        this.lock = lock;
    }

    /**
     * Locks {@code dir} (which need not exist yet) for this run.
     *
     * @throws CollieException when another run holds it (naming its pid, host and start) or the lock file cannot be
     *                         written (naming the file)
     */
    public static DirectoryLock acquire(Path dir) {
        Path abs = dir.toAbsolutePath().normalize();
        Path file = lockFile(abs);
        if (!HELD.add(abs)) {
            throw inUse(abs, "this process (pid " + ProcessHandle.current().pid() + ")");
        }
        FileChannel ch = null;
        try {
            Files.createDirectories(abs.getParent());
            ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
            FileLock l = ch.tryLock();
            if (l == null) {
                String owner = new String(Files.readAllBytes(file), StandardCharsets.UTF_8).strip();
                throw inUse(abs, owner.isEmpty() ? "another process" : owner);
            }
            String owner = "pid " + ProcessHandle.current().pid() + " on " + host() + " since " + Instant.now();
            ch.truncate(0);
            AtomicFiles.writeFully(ch, ByteBuffer.wrap(owner.getBytes(StandardCharsets.UTF_8)));
            ch.force(false);
            return new DirectoryLock(abs, ch, l);
        } catch (IOException | OverlappingFileLockException | CollieException e) {
            HELD.remove(abs);
            closeQuietly(ch);
            if (e instanceof CollieException c) {
                throw c;
            }
            throw new CollieException(file + ": cannot lock " + abs + " for this run: " + e, e);
        }
    }

    static Path lockFile(Path abs) {
        return abs.resolveSibling("." + abs.getFileName() + ".lock");
    }

    private static CollieException inUse(Path dir, String owner) {
        return new CollieException(dir + " is being written by another run (" + owner + "): two runs writing one"
                + " directory would mix their files; wait for it, or choose another directory");
    }

    private static String host() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "this host";
        }
    }

    private static void closeQuietly(FileChannel ch) {
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // nothing held
            }
        }
    }

    /** Releases the lock (the lock file stays, empty of meaning: only a held OS lock counts). */
    @Override
    public void close() {
        try {
            lock.release();
        } catch (IOException ignored) {
            // closing the channel releases it too
        } finally {
            closeQuietly(channel);
            HELD.remove(dir);
        }
    }
}
