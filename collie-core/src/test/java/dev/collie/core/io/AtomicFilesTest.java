package dev.collie.core.io;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AtomicFilesTest {
    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void replacesAFileCreatingItsDirectoryAndLeavesNoTemporary(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("a/b/config.json");
        AtomicFiles.writeString(file, "one");
        AtomicFiles.writeString(file, "two");
        assertEquals("two", Files.readString(file));
        assertEquals(List.of("config.json"), names(file.getParent()));
    }

    @Test
    void aFailedWriteKeepsTheOldFileAndRemovesItsTemporary(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("model.safetensors");
        AtomicFiles.writeString(file, "old");
        CollieException e = assertThrows(CollieException.class, () -> AtomicFiles.write(file, ch -> {
            AtomicFiles.writeFully(ch, ByteBuffer.wrap("half".getBytes()));
            throw new IOException("disk full");
        }));
        assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("disk full"), e.getMessage());
        assertEquals("old", Files.readString(file));
        assertEquals(List.of("model.safetensors"), names(tmp));
    }

    @Test
    void replacesADirectoryAndDeletesTheOldOne(@TempDir Path tmp) throws IOException {
        Path target = tmp.resolve("step_2");
        Files.createDirectories(target);
        Files.writeString(target.resolve("stale"), "x");
        Path fresh = Files.createTempDirectory(tmp, "step_2.tmp-");
        Files.writeString(fresh.resolve("manifest.json"), "{}");
        AtomicFiles.replaceDirectory(fresh, target);
        assertEquals(List.of("manifest.json"), names(target));
        assertEquals(List.of("step_2"), names(tmp));
        AtomicFiles.deleteTree(target);
        assertFalse(Files.exists(target));
        AtomicFiles.deleteTree(target);      // nothing there: nothing to do
    }
}
