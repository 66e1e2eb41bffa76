package dev.collie.core.io;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A model directory replaced as a whole; leftovers of interrupted saves removed; one run per directory. */
class ModelDirectoryTest {
    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static void model(Path dir, String version, String... shards) throws IOException {
        Files.writeString(dir.resolve("config.json"), version);
        for (String s : shards) {
            Files.writeString(dir.resolve(s), version);
        }
    }

    @Test
    void replacesTheModelFilesAndCarriesOverTheRest(@TempDir Path tmp) throws IOException {
        Path out = Files.createDirectories(tmp.resolve("out"));
        model(out, "old", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                "model.safetensors.index.json", "tokenizer.json");
        Files.createDirectories(out.resolve("checkpoints/step_2"));
        Files.writeString(out.resolve("checkpoints/step_2/trainer.json"), "{}");
        Files.writeString(out.resolve("notes.txt"), "mine");
        ModelDirectory.replace(out, ModelDirectory.Content.MODEL, dir -> model(dir, "new", "model.safetensors"));
        assertEquals(List.of("checkpoints", "config.json", "model.safetensors", "notes.txt", "tokenizer.json"),
                names(out), "the old shards and index are gone; the tokenizer, checkpoints and notes stay");
        assertEquals("old", Files.readString(out.resolve("tokenizer.json")), "not written by this save: kept");
        assertEquals("new", Files.readString(out.resolve("config.json")));
        assertEquals("{}", Files.readString(out.resolve("checkpoints/step_2/trainer.json")));
        assertEquals(List.of("out"), names(tmp), "nothing left beside it");
    }

    @Test
    void aFailedSaveLeavesTheOldModelAndSaysSo(@TempDir Path tmp) throws IOException {
        Path out = Files.createDirectories(tmp.resolve("out"));
        model(out, "old", "model.safetensors");
        CollieException e = assertThrows(CollieException.class, () -> ModelDirectory.replace(out,
                ModelDirectory.Content.MODEL, dir -> {
                    model(dir, "half");
                    throw new IOException("No space left on device");
                }));
        assertTrue(e.getMessage().contains("not saved") && e.getMessage().contains("No space left on device")
                && e.getMessage().contains("previous contents of " + out + " are unchanged"), e.getMessage());
        assertEquals("old", Files.readString(out.resolve("config.json")));
        assertEquals(List.of("out"), names(tmp));
    }

    @Test
    void anAdapterIsNeverSavedOverAModelNorAModelOverAnAdapter(@TempDir Path tmp) throws IOException {
        Path full = Files.createDirectories(tmp.resolve("full"));
        model(full, "old", "model.safetensors");
        CollieException e = assertThrows(CollieException.class, () -> ModelDirectory.replace(full,
                ModelDirectory.Content.ADAPTER, dir -> Files.writeString(dir.resolve("adapter_config.json"), "{}")));
        assertTrue(e.getMessage().contains("holds a full model (config.json, model.safetensors)"), e.getMessage());
        assertEquals(List.of("config.json", "model.safetensors"), names(full));

        Path adapter = Files.createDirectories(tmp.resolve("adapter"));
        Files.writeString(adapter.resolve("adapter_config.json"), "{}");
        e = assertThrows(CollieException.class, () -> ModelDirectory.checkWritable(adapter,
                ModelDirectory.Content.MODEL, 0));
        assertTrue(e.getMessage().contains("holds a peft adapter"), e.getMessage());
    }

    @Test
    void checkWritableFindsWhatWouldFailTheSave(@TempDir Path tmp) throws IOException {
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        CollieException e = assertThrows(CollieException.class, () -> ModelDirectory.checkWritable(file,
                ModelDirectory.Content.MODEL, 0));
        assertTrue(e.getMessage().contains("is not a directory"), e.getMessage());
        e = assertThrows(CollieException.class, () -> ModelDirectory.checkWritable(file.resolve("out"),
                ModelDirectory.Content.MODEL, 0));
        assertTrue(e.getMessage().contains("cannot be created"), e.getMessage());
        e = assertThrows(CollieException.class, () -> ModelDirectory.checkWritable(tmp.resolve("out"),
                ModelDirectory.Content.MODEL, Long.MAX_VALUE));
        assertTrue(e.getMessage().contains("needs about") && e.getMessage().contains("free"), e.getMessage());
        ModelDirectory.checkWritable(tmp.resolve("new/out"), ModelDirectory.Content.MODEL, 1000);
        assertEquals(List.of("a-file", "new"), names(tmp));
        assertEquals(List.of(), names(tmp.resolve("new")), "the probe is gone");
    }

    @Test
    void leftoversOfDeadWritersAreRemovedAtTheNextSave(@TempDir Path tmp) throws IOException {
        Path out = Files.createDirectories(tmp.resolve("out"));
        model(out, "old", "model.safetensors");
        long dead = ProcessHandle.current().pid() + 1_000_000;     // beyond any pid this host hands out
        Files.createDirectories(tmp.resolve(".out.tmp-" + dead + "-1"));
        Files.createDirectories(tmp.resolve("out.tmp-123456"));                 // an older unnamed kind
        Files.createDirectories(tmp.resolve(".out.tmp-1-7"));                   // pid 1 is alive: kept
        Files.writeString(out.resolve(".model.safetensors." + dead + "-3.tmp"), "torn");
        Files.writeString(tmp.resolve("other.tmp-1"), "not ours");
        Files.writeString(out.resolve("notes.tmp-1"), "the user's");             // inside: only hidden ones are ours
        ModelDirectory.replace(out, ModelDirectory.Content.MODEL, dir -> model(dir, "new", "model.safetensors"));
        assertEquals(List.of(".out.tmp-1-7", "other.tmp-1", "out"), names(tmp));
        assertEquals(List.of("config.json", "model.safetensors", "notes.tmp-1"), names(out));
    }

    @Test
    void filesAreWrittenWithTheUsualUmaskNotAsPrivateTemporaries(@TempDir Path tmp) throws IOException {
        Path reference = Files.createFile(tmp.resolve("reference"));
        Path written = tmp.resolve("config.json");
        AtomicFiles.writeString(written, "{}");
        Set<PosixFilePermission> expected = Files.getPosixFilePermissions(reference);
        assertEquals(expected, Files.getPosixFilePermissions(written));
        Path dir = AtomicFiles.newSiblingDirectory(tmp.resolve("step_2"));
        Path refDir = Files.createDirectory(tmp.resolve("refdir"));
        assertEquals(Files.getPosixFilePermissions(refDir), Files.getPosixFilePermissions(dir));
    }
}
