package dev.collie.parallel.comm;

import java.nio.ByteBuffer;
import java.time.Duration;

/**
 * Moves tagged byte messages between world ranks; the ring algorithms of {@link RingCommunicator} sit on it.
 * Messages from one source with one tag arrive in the order they were sent.
 */
interface Transport {
    /**
     * The largest payload of one message, 1 MiB: the ring algorithms cut every transfer into chunks of at most
     * this, and a receiver takes a longer (or negative) length as a corrupt stream.
     */
    int MAX_PAYLOAD_BYTES = 1 << 20;

    int worldRank();

    int worldSize();

    /**
     * Sends {@code payload} (its bytes from 0 to limit, at most {@link #MAX_PAYLOAD_BYTES}, in native byte order)
     * to world rank {@code dst}; the transport takes ownership of the buffer, so the caller must not touch it again.
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
