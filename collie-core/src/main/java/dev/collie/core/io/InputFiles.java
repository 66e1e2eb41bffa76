package dev.collie.core.io;

import dev.collie.core.CollieException;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Reading a file the user named, with errors that name it: missing (and what it should be), not readable, failing. */
public final class InputFiles {
    private InputFiles() {
    }

    /** How to read the file (e.g. {@code Files::readAllBytes}). */
    @FunctionalInterface
    public interface Reader<T> {
        T read(Path file) throws IOException;
    }

    /**
     * {@code reader} applied to {@code file}.
     *
     * @param missing what the file is, said when it does not exist, e.g. "a Hugging Face model directory has a
     *                config.json"
     * @throws CollieException naming {@code file} when it is missing, not readable or fails to read
     */
    public static <T> T read(Path file, String missing, Reader<T> reader) {
        try {
            return reader.read(file);
        } catch (NoSuchFileException e) {
            throw new CollieException(file + ": no such file (" + missing + ")", e);
        } catch (AccessDeniedException e) {
            throw new CollieException(file + ": permission denied", e);
        } catch (IOException e) {
            throw new CollieException(file + ": cannot read: " + e, e);
        }
    }
}
