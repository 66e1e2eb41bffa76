package dev.collie.parallel.comm;

/** A transport-level failure (a peer's connection lost, the transport closed); the communicator adds context. */
final class TransportException extends Exception {
    TransportException(String message) {
        super(message);
    }

    TransportException(String message, Throwable cause) {
        super(message, cause);
    }
}
