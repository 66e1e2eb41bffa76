package dev.collie.core.io;

import dev.collie.core.CollieException;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A model or adapter directory written as a whole: the new one is written beside the old and swapped in by rename
 * at the end, so a crash at any point leaves the old directory or the new one, never a mix. What the old directory
 * held besides weight files (its tokenizer, a {@code checkpoints/} folder, the user's notes) is carried into the new
 * one by hard links unless the save wrote its own; its weight files and configs are not, so no stale shard survives.
 */
public final class ModelDirectory {
    /** What a directory holds: a full model ({@code config.json} and weights) or a peft adapter. */
    public enum Content {
        MODEL("a full model"), ADAPTER("a peft adapter");

        private final String words;

        Content(String words) {
            this.words = words;
        }
    }

    /** What fills the new directory. */
    @FunctionalInterface
    public interface Body {
        void write(Path dir) throws IOException;
    }

    /**
     * Weight files and the configs that describe them: never carried over from the directory a save replaces, so no
     * stale shard of an older layout survives. Everything else (tokenizer files, a checkpoints folder, notes) is.
     */
    private static final Predicate<String> MODEL_FILE = Pattern.compile(String.join("|",
            "config\\.json", "model(-\\d+-of-\\d+)?\\.safetensors", "model\\.safetensors\\.index\\.json",
            "pytorch_model.*\\.bin(\\.index\\.json)?", "adapter_config\\.json", "adapter_model\\.(safetensors|bin)"))
            .asMatchPredicate();

    private ModelDirectory() {
    }

    /**
     * Checks, before any work, that {@code content} of about {@code bytes} can be saved to {@code target}: it is a
     * directory or absent, holds no other kind of content, its parent can be created and written (the new directory
     * goes beside the old one), and the file system has room for the new directory while the old one still exists.
     *
     * @throws CollieException naming the directory and what is wrong
     */
    public static void checkWritable(Path target, Content content, long bytes) {
        Path abs = target.toAbsolutePath().normalize();
        if (Files.exists(abs) && !Files.isDirectory(abs)) {
            throw new CollieException(target + " exists and is not a directory");
        }
        checkContent(abs, content);
        Path parent = abs.getParent();
        Path probe = null;
        try {
            Files.createDirectories(parent);
            probe = Files.createFile(parent.resolve("." + abs.getFileName() + "." + AtomicFiles.uniqueSuffix()
                    + ".tmp"));
            FileStore store = Files.getFileStore(parent);
            long free = store.getUsableSpace();
            if (bytes > free) {
                throw new CollieException(target + ": the save needs about " + mb(bytes) + " and the file system ("
                        + store + ") has " + mb(free) + " free");
            }
        } catch (FileAlreadyExistsException e) {
            throw new CollieException(target + ": cannot be created: " + e.getFile() + " is in the way", e);
        } catch (NoSuchFileException e) {
            throw new CollieException(target + ": cannot be created: " + e.getFile() + " is not a directory", e);
        } catch (IOException e) {
            throw new CollieException(target + ": cannot be written (" + e + "); checked before training", e);
        } finally {
            AtomicFiles.deleteQuietly(probe);
        }
    }

    /**
     * Replaces {@code target} with what {@code body} writes into a new directory beside it, carrying over the old
     * directory's other entries; leftovers of interrupted saves of {@code target} are removed first.
     *
     * @throws CollieException when the target holds another kind of content, or the write fails (the old
     *                         directory is then unchanged, and the message says so)
     */
    public static void replace(Path target, Content content, Body body) {
        Path abs = target.toAbsolutePath().normalize();
        checkContent(abs, content);
        Path tmp = null;
        try {
            AtomicFiles.removeLeftoversOf(abs);
            // inside the directory only hidden temporaries are ours: a user's "notes.tmp-1" is carried over
            AtomicFiles.removeLeftovers(abs, name -> name.startsWith("."));
            tmp = AtomicFiles.newSiblingDirectory(abs);
            body.write(tmp);
            carryOver(abs, tmp);
            AtomicFiles.replaceDirectory(tmp, abs);
            tmp = null;
        } catch (IOException | RuntimeException e) {
            String unchanged = Files.isDirectory(abs) ? "; the previous contents of " + target + " are unchanged" : "";
            String why = e instanceof CollieException ? e.getMessage() : e.toString();
            throw new CollieException(target + ": not saved: " + why + unchanged, e);
        } finally {
            if (tmp != null) {
                try {
                    AtomicFiles.deleteTree(tmp);
                } catch (IOException ignored) {
                    // a leftover, removed by the next save
                }
            }
        }
    }

    /** What {@code dir} holds: a model, an adapter, or null (absent, empty, or neither). */
    public static Content contentOf(Path dir) {
        if (Files.isRegularFile(dir.resolve("adapter_config.json"))) {
            return Content.ADAPTER;
        }
        if (Files.isRegularFile(dir.resolve("config.json")) && (Files.isRegularFile(dir.resolve("model.safetensors"))
                || Files.isRegularFile(dir.resolve("model.safetensors.index.json")))) {
            return Content.MODEL;
        }
        return null;
    }

    private static void checkContent(Path dir, Content content) {
        Content there = contentOf(dir);
        if (there != null && there != content) {
            throw new CollieException(dir + " holds " + there.words + " (" + String.join(", ", names(dir))
                    + "): saving " + content.words + " there would mix the two; choose another directory");
        }
    }

    private static List<String> names(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> !n.startsWith(".")).sorted().toList();
        } catch (IOException e) {
            return List.of("unreadable: " + e.getMessage());
        }
    }

    /** Links (or copies, where links are refused) the old directory's other entries into the new one. */
    private static void carryOver(Path old, Path fresh) throws IOException {
        if (!Files.isDirectory(old)) {
            return;
        }
        Set<String> written = new TreeSet<>(names(fresh));
        for (String name : names(old)) {
            if (!written.contains(name) && !MODEL_FILE.test(name)) {
                linkTree(old.resolve(name), fresh.resolve(name));
            }
        }
    }

    private static void linkTree(Path from, Path to) throws IOException {
        if (Files.isSymbolicLink(from)) {
            Files.createSymbolicLink(to, Files.readSymbolicLink(from));
        } else if (Files.isDirectory(from)) {
            Files.createDirectory(to);
            try (Stream<Path> s = Files.list(from)) {
                for (Path p : s.toList()) {
                    linkTree(p, to.resolve(p.getFileName().toString()));
                }
            }
        } else {
            try {
                Files.createLink(to, from);
            } catch (UnsupportedOperationException | IOException e) {
                Files.copy(from, to);
            }
        }
    }

    private static String mb(long bytes) {
        return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
    }
}
