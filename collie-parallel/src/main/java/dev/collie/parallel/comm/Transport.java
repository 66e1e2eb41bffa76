package dev.collie.parallel.comm;

import java.nio.ByteBuffer;
import java.time.Duration;

/**
 * Moves tagged byte messages between world ranks; the ring algorithms of {@link RingCommunicator} sit on it.
 * Messages from one source with one tag arrive in the order they were sent.
 */
interface Transport {
    int worldRank();

    int worldSize();

    /**
     * Sends {@code payload} (its bytes from 0 to limit, in native byte order) to world rank {@code dst}; the
     * transport takes ownership of the buffer, so the caller must not touch it again.
     */
    void send(int dst, long tag, ByteBuffer payload) throws TransportException;

    /**
     * The next message from {@code src} with {@code tag}, or {@code null} if none arrives within {@code timeout}.
     *
     * @throws TransportException if {@code src}'s connection is lost or this transport is closed
     */
    ByteBuffer recv(int src, long tag, Duration timeout) throws TransportException;

    void close();
}
