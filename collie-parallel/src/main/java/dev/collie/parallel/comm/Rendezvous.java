package dev.collie.parallel.comm;

import dev.collie.core.CollieException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.math.BigDecimal;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * Builds the full mesh of authenticated connections for {@link TcpTransport}: rank 0 listens on the master port;
 * every other rank opens its own listening socket, connects to rank 0 and, after the {@link Handshake}, registers
 * (rank, world size, host, port); rank 0 answers everyone with the address table; then rank i connects to every
 * rank 0 &lt; j &lt; i and accepts the ranks above it.
 *
 * <p>A listening socket accepts on a thread of its own and handshakes each connection on another, so a silent,
 * garbage or foreign connection holds up no one: it is closed and logged at WARN with its address after at most
 * {@link Handshake#TIMEOUT}. The whole rendezvous fails with a {@link CollieException} after its timeout, naming
 * the ranks that did not arrive or the host that did not resolve.
 */
final class Rendezvous {
    private static final Logger LOG = LoggerFactory.getLogger(Rendezvous.class);
    /** Connections one listening socket handshakes at once; more are closed at once, so a flood costs no threads. */
    private static final int MAX_HANDSHAKES = 64;

    private final int rank;
    private final int size;
    private final String masterAddr;
    private final int masterPort;
    private final JobSecret secret;
    private final Duration timeout;
    private final long deadline;
    private final Socket[] sockets;

    private Rendezvous(int rank, int size, String masterAddr, int masterPort, JobSecret secret, Duration timeout) {
        this.rank = rank;
        this.size = size;
        this.masterAddr = masterAddr;
        this.masterPort = masterPort;
        this.secret = secret;
        this.timeout = timeout;
        this.deadline = System.nanoTime() + timeout.toNanos();
        this.sockets = new Socket[size];
    }

    /** The connected sockets, indexed by peer rank ({@code null} at {@code rank}); fails after {@code timeout}. */
    static Socket[] connect(int rank, int size, String masterAddr, int masterPort, JobSecret secret, Duration timeout) {
        Rendezvous r = new Rendezvous(rank, size, masterAddr, masterPort, secret, timeout);
        try {
            if (rank == 0) {
                r.master();
            } else {
                r.worker();
            }
            return r.sockets;
        } catch (IOException e) {
            r.closeSockets();
            throw new CollieException("tcp rendezvous: rank " + rank + " of " + size + " via " + masterAddr + ":"
                    + masterPort + " failed: " + e, e);
        } catch (RuntimeException e) {
            r.closeSockets();
            throw e;
        }
    }

    /** What a connecting rank says after the handshake: who it is, the world it expects, where it listens. */
    private record Hello(int rank, int worldSize, String host, int port) {
        void write(Socket s) throws IOException {
            DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream()));
            out.writeInt(rank);
            out.writeInt(worldSize);
            out.writeUTF(host);
            out.writeInt(port);
            out.flush();
        }

        static Hello read(Socket s) throws IOException {
            DataInputStream in = new DataInputStream(s.getInputStream());
            return new Hello(in.readInt(), in.readInt(), in.readUTF(), in.readInt());
        }
    }

    private record Arrival(Socket socket, Hello hello) { }

    private void master() throws IOException {
        ServerSocket server = new ServerSocket();
        try {
            server.setReuseAddress(true);
            server.bind(new InetSocketAddress(resolve(masterAddr), masterPort), size);
        } catch (BindException e) {
            server.close();
            String at = masterAddr + ":" + masterPort;
            throw new CollieException(String.valueOf(e.getMessage()).contains("in use")
                    ? "tcp rendezvous: master port " + masterPort + " is in use (another job?): rank 0 cannot listen"
                    + " on " + at
                    : "tcp rendezvous: rank 0 cannot listen on " + at + " (" + e.getMessage() + "); is MASTER_ADDR"
                    + " an address of this machine?", e);
        } catch (IOException | RuntimeException e) {
            server.close();
            throw e;
        }
        String[] hosts = new String[size];
        int[] ports = new int[size];
        try (Listener listener = new Listener(server)) {
            while (!missing(1).isEmpty()) {
                Hello h = admit(listener.next(() -> "tcp rendezvous: " + ranks(missing(1)) + " of " + size
                        + " did not arrive at " + masterAddr + ":" + masterPort + " within " + seconds(timeout)), 1);
                hosts[h.rank()] = h.host();
                ports[h.rank()] = h.port();
            }
        }
        for (int r = 1; r < size; r++) {
            DataOutputStream out = new DataOutputStream(new BufferedOutputStream(sockets[r].getOutputStream()));
            for (int j = 0; j < size; j++) {
                out.writeUTF(hosts[j] == null ? "" : hosts[j]);
                out.writeInt(ports[j]);
            }
            out.flush();
        }
    }

    private void worker() throws IOException {
        String at = masterAddr + ":" + masterPort;
        Socket master = dial(new InetSocketAddress(resolve(masterAddr), masterPort), at,
                () -> "tcp rendezvous: rank " + rank + " could not reach rank 0 at " + at + " within " + seconds(timeout));
        sockets[0] = master;
        ServerSocket server = new ServerSocket();
        try {
            server.bind(new InetSocketAddress(master.getLocalAddress(), 0), size);
        } catch (IOException e) {
            server.close();
            throw e;
        }
        try (Listener listener = new Listener(server)) {
            new Hello(rank, size, master.getLocalAddress().getHostAddress(), server.getLocalPort()).write(master);
            String[] hosts = new String[size];
            int[] ports = new int[size];
            master.setSoTimeout(remainingMillis());
            DataInputStream min = new DataInputStream(master.getInputStream());
            try {
                for (int j = 0; j < size; j++) {
                    hosts[j] = min.readUTF();
                    ports[j] = min.readInt();
                }
            } catch (SocketTimeoutException e) {
                throw new CollieException("tcp rendezvous: rank " + rank + " registered with rank 0 but got no address"
                        + " table within " + seconds(timeout) + " (are all " + size + " ranks started?)", e);
            } catch (EOFException e) {
                throw new CollieException("tcp rendezvous: rank 0 closed the connection before sending the address"
                        + " table to rank " + rank + " (did rank 0 fail or time out waiting for other ranks?)", e);
            }
            for (int j = 1; j < rank; j++) {
                String peer = hosts[j] + ":" + ports[j];
                int jj = j;
                sockets[j] = dial(new InetSocketAddress(hosts[j], ports[j]), peer,
                        () -> "tcp rendezvous: rank " + rank + " could not connect to rank " + jj + " at " + peer
                                + " within " + seconds(timeout));
                new Hello(rank, size, "", 0).write(sockets[j]);
            }
            while (!missing(rank + 1).isEmpty()) {
                admit(listener.next(() -> "tcp rendezvous: " + ranks(missing(rank + 1)) + " of " + size
                        + " did not connect to rank " + rank + " within " + seconds(timeout)), rank + 1);
            }
        }
    }

    /** Takes an authenticated arrival as the rank it says it is, which must be one in [lowest, size) not yet here. */
    private Hello admit(Arrival a, int lowest) {
        Hello h = a.hello();
        String problem = null;
        if (h.worldSize() != size) {
            problem = "rank " + h.rank() + " says WORLD_SIZE is " + h.worldSize() + " but rank " + rank + " says " + size;
        } else if (h.rank() < lowest || h.rank() >= size) {
            problem = "rank " + rank + " waits for ranks " + lowest + " to " + (size - 1) + " but rank " + h.rank()
                    + " connected";
        } else if (sockets[h.rank()] != null) {
            problem = "two processes of this job say they are rank " + h.rank() + " (is RANK set twice?)";
        }
        if (problem != null) {
            closeQuietly(a.socket());
            throw new CollieException("tcp rendezvous: " + problem);
        }
        sockets[h.rank()] = a.socket();
        return h;
    }

    /** Connects to {@code addr} and runs the handshake, trying again until the deadline while the far end is not up. */
    private Socket dial(InetSocketAddress addr, String where, Supplier<String> onTimeout) {
        IOException last = null;
        while (System.nanoTime() < deadline) {
            Socket s = new Socket();
            try {
                s.connect(addr, Math.min(1000, remainingMillis()));
                s.setSoTimeout((int) Math.min(Handshake.TIMEOUT.toMillis(), remainingMillis()));
                Handshake.connect(s, secret, where);
                return s;
            } catch (IOException e) {
                last = e;
                closeQuietly(s);
                pause(50);
            } catch (RuntimeException e) {
                closeQuietly(s);
                throw e;
            }
        }
        throw new CollieException(onTimeout.get() + (last == null ? "" : " (last error: " + last + ")"), last);
    }

    /** {@code host}'s address, trying again until the deadline (a cluster's DNS may lag the job's start). */
    private InetAddress resolve(String host) {
        while (true) {
            try {
                return InetAddress.getByName(host);
            } catch (UnknownHostException e) {
                if (System.nanoTime() >= deadline) {
                    throw new CollieException("tcp rendezvous: rank " + rank + " could not resolve MASTER_ADDR '" + host
                            + "' within " + seconds(timeout) + " (" + e.getMessage() + ")", e);
                }
                pause(200);
            }
        }
    }

    /** The ranks from {@code lowest} up that have no socket yet. */
    private List<Integer> missing(int lowest) {
        List<Integer> m = new ArrayList<>();
        for (int i = lowest; i < size; i++) {
            if (sockets[i] == null) {
                m.add(i);
            }
        }
        return m;
    }

    /** "rank 2" or "ranks 2, 3". */
    private static String ranks(List<Integer> ranks) {
        return (ranks.size() == 1 ? "rank " : "ranks ")
                + ranks.stream().map(String::valueOf).collect(Collectors.joining(", "));
    }

    /** "120 s", "1.5 s". */
    static String seconds(Duration d) {
        return BigDecimal.valueOf(d.toMillis(), 3).stripTrailingZeros().toPlainString() + " s";
    }

    private int remainingMillis() {
        long left = (deadline - System.nanoTime()) / 1_000_000;
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, left)); // 0 would mean "no timeout"
    }

    private void pause(long millis) {
        try {
            Thread.sleep(Math.min(millis, remainingMillis()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CollieException("tcp rendezvous: rank " + rank + " was interrupted", e);
        }
    }

    private void closeSockets() {
        for (Socket s : sockets) {
            closeQuietly(s);
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (Exception ignored) {
            // best effort
        }
    }

    private static Thread daemon(String name, Runnable body) {
        Thread t = new Thread(body, name);
        t.setDaemon(true);
        t.start();
        return t;
    }

    /**
     * A listening socket that accepts on a thread of its own and handshakes each connection on another; the
     * connections that prove the job's secret and say who they are queue up as arrivals, the others are dropped.
     */
    private final class Listener implements AutoCloseable {
        private final ServerSocket server;
        private final BlockingQueue<Arrival> arrivals = new LinkedBlockingQueue<>();
        private final Set<Socket> handshaking = new HashSet<>(); // guarded by this
        private boolean closed; // guarded by this

        Listener(ServerSocket server) {
            this.server = server;
            daemon("collie-tcp-accept-r" + rank, this::acceptLoop);
        }

        /** The next arrival; fails with {@code onTimeout}'s message at the rendezvous deadline. */
        Arrival next(Supplier<String> onTimeout) {
            try {
                Arrival a = arrivals.poll(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                if (a == null) {
                    throw new CollieException(onTimeout.get());
                }
                return a;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CollieException("tcp rendezvous: rank " + rank + " was interrupted", e);
            }
        }

        private void acceptLoop() {
            while (true) {
                Socket s;
                try {
                    s = server.accept();
                } catch (IOException e) {
                    return; // closed
                }
                boolean full;
                synchronized (this) {
                    if (closed) {
                        closeQuietly(s);
                        return;
                    }
                    full = handshaking.size() >= MAX_HANDSHAKES;
                    if (!full) {
                        handshaking.add(s);
                    }
                }
                if (full) {
                    LOG.warn("tcp rendezvous: rank {} dropped a connection from {}: {} others are handshaking",
                            rank, s.getRemoteSocketAddress(), MAX_HANDSHAKES);
                    closeQuietly(s);
                } else {
                    daemon("collie-tcp-handshake-r" + rank, () -> handshake(s));
                }
            }
        }

        private void handshake(Socket s) {
            Arrival a = null;
            String why = null;
            try {
                s.setSoTimeout((int) Handshake.TIMEOUT.toMillis());
                Handshake.accept(s, secret);
                a = new Arrival(s, Hello.read(s));
            } catch (SocketTimeoutException e) {
                why = "no handshake within " + seconds(Handshake.TIMEOUT);
            } catch (EOFException e) {
                why = "it closed the connection during the handshake";
            } catch (IOException | RuntimeException e) {
                why = e.getMessage() == null ? e.toString() : e.getMessage();
            }
            synchronized (this) {
                handshaking.remove(s);
                if (closed) {
                    closeQuietly(s);
                    return;
                }
                if (a != null) {
                    arrivals.add(a);
                    return;
                }
            }
            LOG.warn("tcp rendezvous: rank {} dropped a connection from {}: {}", rank, s.getRemoteSocketAddress(), why);
            closeQuietly(s);
        }

        /** Stops listening; connections still handshaking or not taken are closed. */
        @Override
        public synchronized void close() {
            closed = true;
            Rendezvous.closeQuietly(server);
            handshaking.forEach(Rendezvous::closeQuietly);
            handshaking.clear();
            for (Arrival a : arrivals) {
                Rendezvous.closeQuietly(a.socket());
            }
            arrivals.clear();
        }
    }
}
