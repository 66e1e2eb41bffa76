package dev.collie.core;

/**
 * An error caused by the user's input (a config value, a file, a token id) rather than by a bug.
 * Its message is written for the user: it names the field, the file and, where there is one, the line.
 * The CLI prints the message alone, without a stack trace.
 */
public class CollieException extends RuntimeException {
    public CollieException(String message) {
        super(message);
    }

    public CollieException(String message, Throwable cause) {
        super(message, cause);
    }
}
