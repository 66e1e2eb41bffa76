package dev.collie.core.io;

import dev.collie.core.CollieException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The one way collie replaces a file or a directory: write a temporary sibling, force it to disk, rename it over
 * the target in one step, then force the directory, so a crash leaves the old version or the new one, never a
 * torn file, and a finished write survives a power cut. The temporary is removed when the write fails.
 */
public final class AtomicFiles {
    private AtomicFiles() {
    }

    /** What fills the temporary file. */
    @FunctionalInterface
    public interface Body {
        void write(FileChannel out) throws IOException;
    }

    /** Replaces {@code file} with what {@code body} writes (creating its directory); errors name the file. */
    public static void write(Path file, Body body) {
        Path abs = file.toAbsolutePath();
        Path dir = abs.getParent();
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = dir.resolve("." + abs.getFileName() + "." + uniqueSuffix() + ".tmp");
            // created with the process's umask (a temporary file's 0600 would survive the rename)
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW)) {
                body.write(ch);
                ch.force(true);
            }
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            tmp = null;
            syncDirectory(dir);
        } catch (IOException e) {
            throw new CollieException(file + ": cannot write: " + e, e);
        } finally {
            deleteQuietly(tmp);
        }
    }

    private static final AtomicLong COUNTER = new AtomicLong();

    /** {@code <pid>-<n>}: unique among this host's processes, and names the writer of a leftover. */
    static String uniqueSuffix() {
        return ProcessHandle.current().pid() + "-" + COUNTER.incrementAndGet();
    }

    /**
     * A new empty directory beside {@code target} to fill and then {@link #replaceDirectory move into place}: named
     * {@code .<target>.tmp-<pid>-<n>}, created with the process's umask.
     */
    public static Path newSiblingDirectory(Path target) throws IOException {
        Path abs = target.toAbsolutePath();
        Files.createDirectories(abs.getParent());
        return Files.createDirectory(abs.resolveSibling("." + abs.getFileName() + ".tmp-" + uniqueSuffix()));
    }

    /**
     * Deletes what interrupted writes left in {@code dir}: temporary files ({@code .<name>.<pid>-<n>.tmp}) and
     * directories ({@code .<name>.tmp-*}, {@code <name>.tmp-*}, {@code <name>.old-*}), except those of a process
     * that is still running. Only the holder of the directory's {@link DirectoryLock} may call it.
     *
     * @return the entries deleted
     */
    public static List<Path> removeLeftovers(Path dir) throws IOException {
        return removeLeftovers(dir, name -> true);
    }

    /** As {@link #removeLeftovers(Path)} for the leftovers of writing {@code target} only (its siblings). */
    public static List<Path> removeLeftoversOf(Path target) throws IOException {
        Path abs = target.toAbsolutePath();
        String name = abs.getFileName().toString();
        return removeLeftovers(abs.getParent(), n -> n.startsWith("." + name + ".") || n.startsWith(name + "."));
    }

    /** As {@link #removeLeftovers(Path)} for the entries whose names pass {@code names}. */
    static List<Path> removeLeftovers(Path dir, Predicate<String> names) throws IOException {
        List<Path> removed = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return removed;
        }
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.toList()) {
                String name = p.getFileName().toString();
                Matcher m = LEFTOVER.matcher(name);
                if (names.test(name) && m.matches() && !alive(m.group("filePid") != null ? m.group("filePid") : m.group("dirPid"))) {
                    deleteTree(p);
                    removed.add(p);
                }
            }
        }
        return removed;
    }

    /** A temporary file, or a temporary or set-aside directory (with its writer's pid, or of the older unnamed kind). */
    private static final Pattern LEFTOVER = Pattern.compile(
            "\\..+\\.(?<filePid>\\d+)-\\d+\\.tmp|\\.?.+\\.(?:tmp|old)-(?:(?<dirPid>\\d+)-\\d+|.+)");

    private static boolean alive(String pid) {
        if (pid == null) {
            return false;
        }
        long p = Long.parseLong(pid);
        return p != ProcessHandle.current().pid() && ProcessHandle.of(p).map(ProcessHandle::isAlive).orElse(false);
    }

    /** Replaces {@code file} with {@code text} in UTF-8. */
    public static void writeString(Path file, String text) {
        write(file, ch -> writeFully(ch, ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8))));
    }

    /** Writes all of {@code buf} to {@code ch}. */
    public static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }

    /**
     * Moves the finished directory {@code tmp} (a sibling of {@code target}) into {@code target}: an existing
     * target is first moved aside, then deleted once the new one is in place; the parent directory is forced after.
     */
    public static void replaceDirectory(Path tmp, Path target) throws IOException {
        Path old = null;
        if (Files.exists(target)) {
            old = target.resolveSibling("." + target.getFileName() + ".old-" + uniqueSuffix());
            Files.move(target, old);
        }
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, target);
        }
        syncDirectory(target.toAbsolutePath().getParent());
        if (old != null) {
            deleteTree(old);
        }
    }

    /** Deletes {@code dir} and everything under it (nothing when it does not exist). */
    public static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Forces a directory's entries (a rename in it) to disk, where the file system allows it. */
    public static void syncDirectory(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException | RuntimeException ignored) {
            // not every file system lets a directory be opened or synced; the rename is already done
        }
    }

    /** Deletes {@code p} if it exists (nothing for null); a failure leaves a hidden leftover the next save removes. */
    static void deleteQuietly(Path p) {
        if (p == null) {
            return;
        }
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // best effort: a stray temporary is hidden (a leading dot) and never read
        }
    }
}
