package dev.collie.parallel.comm;

import dev.collie.core.CollieException;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;

/**
 * A full mesh of TCP connections between the ranks, built and authenticated by a {@link Rendezvous}. One daemon
 * reader thread per connection moves incoming frames (tag, length, payload) into the rank's {@link Mailbox}.
 */
final class TcpTransport implements Transport {
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
                byte[] b = new byte[len];
                in.readFully(b);
                mailbox.deliver(peer, tag, ByteBuffer.wrap(b).order(ByteOrder.nativeOrder()));
            }
        } catch (IOException e) {
            mailbox.fail(peer, closed ? "this communicator is closed"
                    : "the connection to rank " + peer + " was closed (" + e.getClass().getSimpleName()
                    + "); that rank probably failed or closed its communicator");
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
        DataOutputStream out = outs[dst];
        synchronized (out) {
            try {
                out.writeLong(tag);
                out.writeInt(payload.limit());
                out.write(payload.array(), payload.arrayOffset(), payload.limit());
                out.flush();
            } catch (IOException e) {
                throw new TransportException("the connection to rank " + dst + " failed (" + e + ")", e);
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
