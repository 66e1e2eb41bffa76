package dev.collie.parallel.comm;

import dev.collie.core.CollieException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.ProtocolException;
import java.net.Socket;
import java.net.SocketException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;

/**
 * A full mesh of TCP connections between the ranks, built and authenticated by a {@link Rendezvous}. One daemon
 * reader thread per connection moves incoming frames (tag, length, payload) into the rank's {@link Mailbox}; a
 * frame whose length is negative or above {@link Transport#MAX_PAYLOAD_BYTES} means a corrupt stream, and any
 * failure of a reader fails the receives from that peer at once and closes its connection (so the peer's own
 * receives fail at once too).
 */
final class TcpTransport implements Transport {
    private static final Logger LOG = LoggerFactory.getLogger(TcpTransport.class);

    private final int rank;
    private final int size;
    private final Socket[] sockets;
    private final DataOutputStream[] outs;
    private final Mailbox mailbox;
    private volatile boolean closed;

    private TcpTransport(int rank, int size, Socket[] sockets) throws IOException {
        this.rank = rank;
        this.size = size;
        this.sockets = sockets;
        this.outs = new DataOutputStream[size];
        this.mailbox = new Mailbox(size);
        for (int p = 0; p < size; p++) {
            if (sockets[p] == null) {
                continue;
            }
            Socket s = sockets[p];
            s.setSoTimeout(0);
            s.setTcpNoDelay(true);
            outs[p] = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 16));
            DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 1 << 16));
            int peer = p;
            Thread t = new Thread(() -> readLoop(peer, in), "collie-tcp-r" + rank + "-from-" + p);
            t.setDaemon(true);
            t.start();
        }
    }

    /**
     * Runs the rendezvous and connects the mesh, admitting only ranks that know {@code secret} (which may be
     * {@code null} for a world of one); fails with a {@link CollieException} after {@code timeout}.
     */
    static TcpTransport connect(int rank, int size, String masterAddr, int masterPort, JobSecret secret,
                                Duration timeout) {
        if (size > 1 && secret == null) {
            throw new IllegalArgumentException("a world of " + size + " ranks needs the job's secret");
        }
        Socket[] sockets = size > 1 ? Rendezvous.connect(rank, size, masterAddr, masterPort, secret, timeout)
                : new Socket[size];
        try {
            return new TcpTransport(rank, size, sockets);
        } catch (IOException e) {
            for (Socket s : sockets) {
                closeQuietly(s);
            }
            throw new CollieException("tcp rendezvous: rank " + rank + " could not set up its connections: " + e, e);
        }
    }

    private static void closeQuietly(Socket s) {
        if (s != null) {
            try {
                s.close();
            } catch (IOException ignored) {
                // best effort
            }
        }
    }

    private void readLoop(int peer, DataInputStream in) {
        try {
            while (true) {
                long tag = in.readLong();
                int len = in.readInt();
                if (len < 0 || len > MAX_PAYLOAD_BYTES) {
                    throw new ProtocolException("rank " + peer + " sent a frame header with length " + len + " (tag 0x"
                            + Long.toHexString(tag) + "), outside [0, " + MAX_PAYLOAD_BYTES + "] bytes: the stream"
                            + " from rank " + peer + " is corrupt and its connection is closed");
                }
                byte[] b = new byte[len];
                in.readFully(b);
                mailbox.deliver(peer, tag, ByteBuffer.wrap(b).order(ByteOrder.nativeOrder()));
            }
        } catch (Throwable t) {
            String reason;
            if (closed) {
                reason = "this communicator is closed";
            } else if (t instanceof ProtocolException) {
                reason = t.getMessage();
            } else if (t instanceof IOException) {
                reason = "the connection to rank " + peer + " was closed (" + t.getClass().getSimpleName()
                        + "); that rank probably failed or closed its communicator";
            } else {
                reason = "the reader of the connection to rank " + peer + " failed (" + t + ")";
            }
            if (!closed && !(t instanceof EOFException || t instanceof SocketException)) {
                LOG.error("tcp: rank {}: {}", rank, reason);
            }
            mailbox.fail(peer, reason);
            closeQuietly(sockets[peer]);
        }
    }

    /** Writes a bare frame header (no payload) to {@code dst}: what a corrupt or hostile peer sends (tests). */
    void sendHeader(int dst, long tag, int length) throws IOException {
        DataOutputStream out = outs[dst];
        synchronized (out) {
            out.writeLong(tag);
            out.writeInt(length);
            out.flush();
        }
    }

    @Override public int worldRank() { return rank; }
    @Override public int worldSize() { return size; }

    @Override
    public void send(int dst, long tag, ByteBuffer payload) throws TransportException {
        if (closed) {
            throw new TransportException("this communicator is closed");
        }
        if (dst == rank) {
            mailbox.deliver(rank, tag, payload);
            return;
        }
        if (payload.limit() > MAX_PAYLOAD_BYTES) {
            throw new IllegalArgumentException("a message of " + payload.limit() + " bytes is above the largest, "
                    + MAX_PAYLOAD_BYTES);
        }
        DataOutputStream out = outs[dst];
        synchronized (out) {
            try {
                out.writeLong(tag);
                out.writeInt(payload.limit());
                out.write(payload.array(), payload.arrayOffset(), payload.limit());
                out.flush();
            } catch (IOException e) {
                String why = mailbox.failure(dst); // set when this side closed the connection, and why
                throw new TransportException(why != null ? why : "the connection to rank " + dst + " failed (" + e + ")", e);
            }
        }
    }

    @Override
    public ByteBuffer recv(int src, long tag, Duration timeout) throws TransportException {
        return mailbox.take(src, tag, timeout.toNanos());
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        mailbox.close("this communicator is closed");
        for (Socket s : sockets) {
            closeQuietly(s);
        }
    }
}
