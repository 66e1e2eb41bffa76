package dev.collie.parallel.comm;

import dev.collie.core.CollieException;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A full mesh of TCP connections between the ranks, built by a rendezvous at rank 0: rank 0 listens on the
 * master port; every other rank opens its own listening socket, connects to rank 0 and registers
 * (rank, world size, host, port); rank 0 answers everyone with the address table; then rank i connects
 * to every rank 0 &lt; j &lt; i and accepts the ranks above it. One daemon reader thread per connection
 * moves incoming frames (tag, length, payload) into the rank's {@link Mailbox}.
 */
final class TcpTransport implements Transport {
    private static final int MAGIC = 0x436f4c4c; // "CoLL"

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

    /** Runs the rendezvous and connects the mesh; fails with a {@link CollieException} after {@code timeout}. */
    static TcpTransport connect(int rank, int size, String masterAddr, int masterPort, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        Socket[] sockets = new Socket[size];
        List<AutoCloseable> toClose = new ArrayList<>();
        try {
            if (size > 1) {
                if (rank == 0) {
                    masterRendezvous(size, masterAddr, masterPort, deadline, timeout, sockets, toClose);
                } else {
                    workerRendezvous(rank, size, masterAddr, masterPort, deadline, timeout, sockets, toClose);
                }
            }
            return new TcpTransport(rank, size, sockets);
        } catch (IOException e) {
            closeAll(toClose);
            throw new CollieException("tcp rendezvous: rank " + rank + " of " + size + " via " + masterAddr + ":"
                    + masterPort + " failed: " + e, e);
        } catch (RuntimeException e) {
            closeAll(toClose);
            throw e;
        } finally {
            // listening sockets are no longer needed; connected ones are kept
            for (AutoCloseable c : toClose) {
                if (c instanceof ServerSocket ss) {
                    try {
                        ss.close();
                    } catch (IOException ignored) {
                        // nothing to do
                    }
                }
            }
        }
    }

    private static void masterRendezvous(int size, String masterAddr, int masterPort, long deadline,
                                         Duration timeout, Socket[] sockets, List<AutoCloseable> toClose)
            throws IOException {
        ServerSocket server = new ServerSocket();
        toClose.add(server);
        server.setReuseAddress(true);
        server.bind(new InetSocketAddress(InetAddress.getByName(masterAddr), masterPort), size);
        String[] hosts = new String[size];
        int[] ports = new int[size];
        int joined = 1;
        while (joined < size) {
            Socket s = acceptBefore(server, deadline, () -> "tcp rendezvous: rank 0 waited "
                    + timeout.toMillis() + " ms at " + masterAddr + ":" + masterPort + " for ranks " + missing(sockets)
                    + " to register; they never joined");
            toClose.add(s);
            s.setSoTimeout(remainingMillis(deadline));
            DataInputStream in = new DataInputStream(s.getInputStream());
            int magic = in.readInt();
            int r = in.readInt();
            int n = in.readInt();
            String host = in.readUTF();
            int port = in.readInt();
            if (magic != MAGIC) {
                throw new CollieException("tcp rendezvous: a connection to " + masterAddr + ":" + masterPort
                        + " is not a collie rank (bad handshake)");
            }
            if (n != size) {
                throw new CollieException("tcp rendezvous: rank " + r + " says WORLD_SIZE is " + n
                        + " but rank 0 says " + size);
            }
            if (r <= 0 || r >= size || sockets[r] != null) {
                throw new CollieException("tcp rendezvous: rank " + r + " registered twice or is outside [1, "
                        + size + ")");
            }
            sockets[r] = s;
            hosts[r] = host;
            ports[r] = port;
            joined++;
        }
        for (int r = 1; r < size; r++) {
            DataOutputStream out = new DataOutputStream(sockets[r].getOutputStream());
            for (int j = 0; j < size; j++) {
                out.writeUTF(hosts[j] == null ? "" : hosts[j]);
                out.writeInt(ports[j]);
            }
            out.flush();
        }
    }

    private static void workerRendezvous(int rank, int size, String masterAddr, int masterPort, long deadline,
                                         Duration timeout, Socket[] sockets, List<AutoCloseable> toClose)
            throws IOException {
        Socket master = connectBefore(new InetSocketAddress(masterAddr, masterPort), deadline,
                () -> "tcp rendezvous: rank " + rank + " could not reach rank 0 at " + masterAddr + ":" + masterPort
                        + " within " + timeout.toMillis() + " ms");
        toClose.add(master);
        sockets[0] = master;
        ServerSocket server = new ServerSocket();
        toClose.add(server);
        server.bind(new InetSocketAddress(master.getLocalAddress(), 0), size);
        DataOutputStream mout = new DataOutputStream(master.getOutputStream());
        mout.writeInt(MAGIC);
        mout.writeInt(rank);
        mout.writeInt(size);
        mout.writeUTF(master.getLocalAddress().getHostAddress());
        mout.writeInt(server.getLocalPort());
        mout.flush();
        master.setSoTimeout(remainingMillis(deadline));
        DataInputStream min = new DataInputStream(master.getInputStream());
        String[] hosts = new String[size];
        int[] ports = new int[size];
        try {
            for (int j = 0; j < size; j++) {
                hosts[j] = min.readUTF();
                ports[j] = min.readInt();
            }
        } catch (SocketTimeoutException e) {
            throw new CollieException("tcp rendezvous: rank " + rank + " registered with rank 0 but got no address"
                    + " table within " + timeout.toMillis() + " ms (are all " + size + " ranks started?)", e);
        } catch (EOFException e) {
            throw new CollieException("tcp rendezvous: rank 0 closed the connection before sending the address"
                    + " table to rank " + rank + " (did rank 0 fail or time out waiting for other ranks?)", e);
        }
        for (int j = 1; j < rank; j++) {
            int peer = j;
            Socket s = connectBefore(new InetSocketAddress(hosts[j], ports[j]), deadline,
                    () -> "tcp rendezvous: rank " + rank + " could not connect to rank " + peer + " at "
                            + hosts[peer] + ":" + ports[peer]);
            toClose.add(s);
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            out.writeInt(MAGIC);
            out.writeInt(rank);
            out.flush();
            sockets[j] = s;
        }
        for (int k = rank + 1; k < size; k++) {
            Socket s = acceptBefore(server, deadline, () -> "tcp rendezvous: rank " + rank + " waited "
                    + timeout.toMillis() + " ms for ranks " + missing(sockets) + " to connect");
            toClose.add(s);
            s.setSoTimeout(remainingMillis(deadline));
            DataInputStream in = new DataInputStream(s.getInputStream());
            int magic = in.readInt();
            int r = in.readInt();
            if (magic != MAGIC || r <= rank || r >= size || sockets[r] != null) {
                throw new CollieException("tcp rendezvous: rank " + rank + " got an unexpected peer handshake"
                        + " (rank " + r + ")");
            }
            sockets[r] = s;
        }
    }

    private static String missing(Socket[] sockets) {
        List<Integer> m = new ArrayList<>();
        for (int i = 1; i < sockets.length; i++) {
            if (sockets[i] == null) {
                m.add(i);
            }
        }
        return m.toString();
    }

    private interface Message {
        String get();
    }

    private static Socket acceptBefore(ServerSocket server, long deadline, Message onTimeout) throws IOException {
        int left = remainingMillis(deadline);
        server.setSoTimeout(left);
        try {
            return server.accept();
        } catch (SocketTimeoutException e) {
            throw new CollieException(onTimeout.get(), e);
        }
    }

    private static Socket connectBefore(InetSocketAddress addr, long deadline, Message onTimeout) {
        IOException last = null;
        while (System.nanoTime() < deadline) {
            Socket s = new Socket();
            try {
                s.connect(addr, Math.max(1, Math.min(1000, remainingMillis(deadline))));
                return s;
            } catch (IOException e) {
                last = e;
                try {
                    s.close();
                    Thread.sleep(Math.min(50, Math.max(1, remainingMillis(deadline))));
                } catch (IOException ignored) {
                    // nothing to do
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        throw new CollieException(onTimeout.get() + (last == null ? "" : " (" + last + ")"), last);
    }

    private static int remainingMillis(long deadline) {
        long left = (deadline - System.nanoTime()) / 1_000_000;
        if (left <= 0) {
            return 1; // 0 would mean "no timeout"
        }
        return (int) Math.min(Integer.MAX_VALUE, left);
    }

    private static void closeAll(List<AutoCloseable> items) {
        for (AutoCloseable c : items) {
            try {
                c.close();
            } catch (Exception ignored) {
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
            if (s != null) {
                try {
                    s.close();
                } catch (IOException ignored) {
                    // best effort
                }
            }
        }
    }
}
