package dev.collie.parallel.comm;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static dev.collie.parallel.comm.TcpCommunicatorTest.SECRET;
import static dev.collie.parallel.comm.TcpCommunicatorTest.freePort;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a rank does with a frame that no collie rank sends: it fails at once, and so does the peer. */
@Timeout(30)
class TcpFrameTest {
    private static final Duration T = Duration.ofSeconds(10);

    /**
     * A frame header with a length no sender writes (negative, or above the largest message) fails the receiver's
     * wait on that peer at once, naming it and the header, and closes the connection, so the peer's own wait on
     * this rank fails at once too (both long before their 20 s timeout).
     */
    @ParameterizedTest
    @ValueSource(ints = {-1, Integer.MAX_VALUE})
    void aFrameWithAnImpossibleLengthFailsBothEndsAtOnce(int length) throws Exception {
        List<TcpTransport> transports = transports(2);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Communicator rank0 = new RingCommunicator(transports.get(0), Duration.ofSeconds(20));
            Communicator rank1 = new RingCommunicator(transports.get(1), Duration.ofSeconds(20));
            Future<?> waiting0 = pool.submit(() -> rank0.recv(Nd4j.create(DataType.FLOAT, 8), 1, 5));
            Future<?> waiting1 = pool.submit(() -> rank1.recv(Nd4j.create(DataType.FLOAT, 8), 0, 5));
            Thread.sleep(200); // both are waiting now
            long t0 = System.nanoTime();
            transports.get(1).sendHeader(0, 0x40000001L, length);
            Throwable e0 = failure(waiting0);
            Throwable e1 = failure(waiting1);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < 2000, "took " + ms + " ms");
            assertTrue(e0 instanceof CollieException, String.valueOf(e0));
            assertTrue(e0.getMessage().startsWith("recv (tag 5): rank 0 was waiting for rank 1: rank 1 sent a frame"
                    + " header with length " + length + " (tag 0x40000001), outside [0, 1048576] bytes"), e0.getMessage());
            assertTrue(e1 instanceof CollieException, String.valueOf(e1));
            assertTrue(e1.getMessage().startsWith("recv (tag 5): rank 1 was waiting for rank 0: the connection to rank 0"
                    + " was closed"), e1.getMessage());
        } finally {
            pool.shutdownNow();
            transports.forEach(TcpTransport::close);
        }
    }

    private static Throwable failure(Future<?> f) throws Exception {
        try {
            f.get(5, TimeUnit.SECONDS);
            throw new AssertionError("the wait did not fail");
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }

    /** n connected transports of a test job, one per rank. */
    private static List<TcpTransport> transports(int n) throws Exception {
        int port = freePort();
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<TcpTransport>> fs = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                int rank = r;
                fs.add(pool.submit(() -> TcpTransport.connect(rank, n, "127.0.0.1", port, SECRET, T)));
            }
            List<TcpTransport> out = new ArrayList<>();
            for (Future<TcpTransport> f : fs) {
                out.add(f.get(15, TimeUnit.SECONDS));
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

}
