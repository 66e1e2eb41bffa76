package dev.collie.parallel.comm;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/** One rank's incoming messages, queued per (source, tag), with per-source failure marks. */
final class Mailbox {
    private record Key(int src, long tag) { }

    private final Map<Key, ArrayDeque<ByteBuffer>> queues = new HashMap<>();
    private final String[] failed;
    private String closed;

    Mailbox(int worldSize) {
        failed = new String[worldSize];
    }

    synchronized void deliver(int src, long tag, ByteBuffer message) {
        queues.computeIfAbsent(new Key(src, tag), k -> new ArrayDeque<>()).add(message);
        notifyAll();
    }

    /** Marks {@code src} as gone; receives from it fail once its queued messages are taken. */
    synchronized void fail(int src, String reason) {
        if (failed[src] == null) {
            failed[src] = reason;
        }
        notifyAll();
    }

    /** Why {@code src} was marked as gone, or {@code null}. */
    synchronized String failure(int src) {
        return failed[src];
    }

    synchronized void close(String reason) {
        if (closed == null) {
            closed = reason;
        }
        notifyAll();
    }

    synchronized ByteBuffer take(int src, long tag, long timeoutNanos) throws TransportException {
        Key key = new Key(src, tag);
        long deadline = System.nanoTime() + timeoutNanos;
        while (true) {
            if (closed != null) {
                throw new TransportException(closed);
            }
            ArrayDeque<ByteBuffer> q = queues.get(key);
            if (q != null && !q.isEmpty()) {
                ByteBuffer m = q.poll();
                if (q.isEmpty()) {
                    queues.remove(key);
                }
                return m;
            }
            if (failed[src] != null) {
                throw new TransportException(failed[src]);
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return null;
            }
            try {
                wait(left / 1_000_000, (int) (left % 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new TransportException("interrupted while waiting for rank " + src, e);
            }
        }
    }
}
