package dev.collie.core.io;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One run at a time writes a directory; the second is refused naming the first. */
class DirectoryLockTest {

    @Test
    void aSecondRunInThisProcessIsRefusedUntilTheFirstReleases(@TempDir Path tmp) {
        Path out = tmp.resolve("out");
        try (DirectoryLock first = DirectoryLock.acquire(out)) {
            CollieException e = assertThrows(CollieException.class, () -> DirectoryLock.acquire(out));
            assertTrue(e.getMessage().contains("being written by another run (this process (pid "), e.getMessage());
        }
        DirectoryLock.acquire(out).close();
    }

    @Test
    void aSecondProcessIsRefusedNamingThePidOfTheFirst(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        Path holder = tmp.resolve("Holder.java");
        Files.writeString(holder, """
                import java.nio.channels.FileChannel;
                import java.nio.file.*;
                public class Holder {
                    public static void main(String[] a) throws Exception {
                        try (FileChannel ch = FileChannel.open(Path.of(a[0]), StandardOpenOption.CREATE,
                                StandardOpenOption.WRITE); var l = ch.lock()) {
                            ch.write(java.nio.ByteBuffer.wrap(("pid " + ProcessHandle.current().pid()).getBytes()));
                            System.out.println("locked");
                            Thread.sleep(60_000);
                        }
                    }
                }
                """);
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(java.toString(), holder.toString(), DirectoryLock.lockFile(out).toString())
                .redirectErrorStream(true).start();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            assertEquals("locked", r.readLine());
            CollieException e = assertThrows(CollieException.class, () -> DirectoryLock.acquire(out));
            assertTrue(e.getMessage().contains("(pid " + p.pid() + ")"), e.getMessage());
        } finally {
            p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        DirectoryLock.acquire(out).close();       // the lock went with the process
    }
}
