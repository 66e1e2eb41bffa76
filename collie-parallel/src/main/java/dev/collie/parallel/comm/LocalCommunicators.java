package dev.collie.parallel.comm;

import dev.collie.core.dist.Communicator;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code local} backend: n ranks as threads of one JVM, each with its own communicator. Messages are
 * handed over through per-rank mailboxes (one copy out of the sender's array, one into the receiver's),
 * with the same ring algorithms and byte counts as the tcp backend.
 */
public final class LocalCommunicators {
    private LocalCommunicators() { }

    /** Creates the n communicators of one world; give communicator i to rank i's thread. */
    public static List<Communicator> create(int n, Duration timeout) {
        if (n < 1) {
            throw new IllegalArgumentException("world size must be at least 1, got " + n);
        }
        Mailbox[] boxes = new Mailbox[n];
        for (int i = 0; i < n; i++) {
            boxes[i] = new Mailbox(n);
        }
        List<Communicator> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(new RingCommunicator(new LocalTransport(i, boxes), timeout));
        }
        return List.copyOf(out);
    }

    /** Same with {@link Communicator#DEFAULT_TIMEOUT}. */
    public static List<Communicator> create(int n) {
        return create(n, Communicator.DEFAULT_TIMEOUT);
    }

    private static final class LocalTransport implements Transport {
        private final int rank;
        private final Mailbox[] boxes;
        private volatile boolean closed;

        LocalTransport(int rank, Mailbox[] boxes) {
            this.rank = rank;
            this.boxes = boxes;
        }

        @Override public int worldRank() { return rank; }
        @Override public int worldSize() { return boxes.length; }

        @Override
        public void send(int dst, long tag, ByteBuffer payload) throws TransportException {
            if (closed) {
                throw new TransportException("this communicator is closed");
            }
            boxes[dst].deliver(rank, tag, payload);
        }

        @Override
        public ByteBuffer recv(int src, long tag, Duration timeout) throws TransportException {
            return boxes[rank].take(src, tag, timeout.toNanos());
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            for (int i = 0; i < boxes.length; i++) {
                if (i != rank) {
                    boxes[i].fail(rank, "rank " + rank + " closed its communicator");
                }
            }
            boxes[rank].close("this communicator is closed");
        }
    }
}
