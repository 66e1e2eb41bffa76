package dev.collie.parallel.comm;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static dev.collie.parallel.comm.TcpCommunicatorTest.SECRET;
import static dev.collie.parallel.comm.TcpCommunicatorTest.assertAllReduceWorks;
import static dev.collie.parallel.comm.TcpCommunicatorTest.awaitListening;
import static dev.collie.parallel.comm.TcpCommunicatorTest.closeAll;
import static dev.collie.parallel.comm.TcpCommunicatorTest.communicators;
import static dev.collie.parallel.comm.TcpCommunicatorTest.freePort;
import static dev.collie.parallel.comm.TcpCommunicatorTest.results;
import static dev.collie.parallel.comm.TcpCommunicatorTest.start;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Who gets into a tcp job: only ranks that know its secret; everyone else is dropped without harm to the job. */
@Timeout(30)
class TcpAdmissionTest {
    private static final Duration T = Duration.ofSeconds(10);

    /**
     * A rank of another job (another secret) that connects to this job's rank 0 is told so at once, and this
     * job forms with its own rank 1 and all-reduces.
     */
    @Test
    void aRankWithAnotherSecretIsRefusedAndTheJobStillAllReduces() throws Exception {
        int port = freePort();
        ExecutorService pool = Executors.newFixedThreadPool(3);
        try {
            Future<Communicator> master = start(pool, 0, 2, port, SECRET, T);
            long t0 = System.nanoTime();
            Future<Communicator> foreign = start(pool, 1, 2, port, JobSecret.of("another job's secret"), T);
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> foreign.get(5, TimeUnit.SECONDS));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < 3000, "took " + ms + " ms");
            assertTrue(e.getCause() instanceof CollieException, String.valueOf(e.getCause()));
            assertEquals("tcp rendezvous: the process at 127.0.0.1:" + port + " did not accept this job's secret:"
                    + " another job on that port? (every rank of a job needs the same COLLIE_JOB_SECRET or"
                    + " COLLIE_JOB_SECRET_FILE)", e.getCause().getMessage());
            formsAndAllReduces(List.of(master, start(pool, 1, 2, port, SECRET, T)));
        } finally {
            pool.shutdownNow();
        }
    }

    /** A process that registers as rank 1 the way collie did before the secret (no handshake) is dropped. */
    @Test
    void aRankWithoutTheSecretIsDroppedAndTheJobStillAllReduces() throws Exception {
        ByteArrayOutputStream old = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(old);
        out.writeInt(0x436f4c4c); // the old registration: magic, rank, world size, host, port
        out.writeInt(1);
        out.writeInt(2);
        out.writeUTF("127.0.0.1");
        out.writeInt(1);
        out.flush();
        assertDroppedWhileTheJobForms(old.toByteArray());
    }

    @Test
    void aGarbageConnectionIsDroppedAndTheJobStillForms() throws Exception {
        byte[] garbage = new byte[4096];
        new Random(7).nextBytes(garbage);
        assertDroppedWhileTheJobForms(garbage);
    }

    /** A connection that sends {@code bytes} to rank 0 of a 2-rank job is closed within 2 s; the job forms. */
    private static void assertDroppedWhileTheJobForms(byte[] bytes) throws Exception {
        int port = freePort();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<Communicator> master = start(pool, 0, 2, port, SECRET, T);
            try (Socket s = dial(port)) {
                s.getOutputStream().write(bytes);
                s.getOutputStream().flush();
                assertClosedWithin(s, 2000);
            }
            formsAndAllReduces(List.of(master, start(pool, 1, 2, port, SECRET, T)));
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * A connection that says nothing neither holds up the ranks that arrive after it nor keeps its place: it is
     * closed after the handshake timeout while rank 0 still waits for rank 2, which then joins.
     */
    @Test
    void aSilentConnectionDelaysNobodyAndIsDroppedAfterTheHandshakeTimeout() throws Exception {
        int port = freePort();
        ExecutorService pool = Executors.newFixedThreadPool(3);
        try {
            Future<Communicator> master = start(pool, 0, 3, port, SECRET, T);
            try (Socket silent = dial(port)) {
                long t0 = System.nanoTime();
                Future<Communicator> rank1 = start(pool, 1, 3, port, SECRET, T);
                assertClosedWithin(silent, Handshake.TIMEOUT.toMillis() + 2000);
                long ms = (System.nanoTime() - t0) / 1_000_000;
                assertTrue(ms >= Handshake.TIMEOUT.toMillis() - 500, "dropped after " + ms + " ms");
                assertTrue(!master.isDone() && !rank1.isDone(), "the job formed without rank 2");
                long t1 = System.nanoTime();
                formsAndAllReduces(List.of(master, rank1, start(pool, 2, 3, port, SECRET, T)));
                long formMs = (System.nanoTime() - t1) / 1_000_000;
                assertTrue(formMs < 3000, "the job took " + formMs + " ms to form after rank 2 started");
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private static void formsAndAllReduces(List<Future<Communicator>> ranks) throws Exception {
        List<Communicator> comms = communicators(results(ranks, 15_000));
        try {
            assertAllReduceWorks(comms);
        } finally {
            closeAll(comms);
        }
    }

    /** A raw connection to the rank 0 listening at {@code port} (once it listens). */
    private static Socket dial(int port) throws Exception {
        awaitListening(port);
        return new Socket("127.0.0.1", port);
    }

    /** Asserts the far end closes {@code s} within {@code millis} (what it sent back, if anything, is skipped). */
    private static void assertClosedWithin(Socket s, long millis) throws IOException {
        s.setSoTimeout((int) millis);
        InputStream in = s.getInputStream();
        try {
            while (in.read() >= 0) {
                // the handshake's answer, if any
            }
        } catch (SocketTimeoutException e) {
            throw new AssertionError("the connection was still open after " + millis + " ms");
        } catch (IOException e) {
            // reset by the far end: closed too
        }
    }
}
