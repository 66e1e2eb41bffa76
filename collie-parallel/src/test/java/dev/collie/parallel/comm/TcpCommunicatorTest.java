package dev.collie.parallel.comm;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import dev.collie.parallel.comm.LocalRanks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(30)
class TcpCommunicatorTest {

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Connects n tcp ranks on loopback, one thread each; ranks listed in {@code absent} never join. */
    static List<Object> connect(int n, Duration timeout, int... absent) throws Exception {
        int port = freePort();
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<Communicator>> fs = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                int rank = r;
                if (Arrays.stream(absent).anyMatch(a -> a == rank)) {
                    continue;
                }
                fs.add(pool.submit(() -> TcpCommunicator.connect(rank, n, "127.0.0.1", port, timeout)));
            }
            List<Object> out = new ArrayList<>();
            for (Future<Communicator> f : fs) {
                try {
                    out.add(f.get(timeout.toMillis() + 5000, TimeUnit.MILLISECONDS));
                } catch (ExecutionException e) {
                    out.add(e.getCause());
                }
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    static List<Communicator> world(int n, Duration timeout) throws Exception {
        List<Communicator> comms = new ArrayList<>();
        for (Object o : connect(n, timeout)) {
            if (o instanceof Throwable t) {
                throw new AssertionError("connect failed", t);
            }
            comms.add((Communicator) o);
        }
        return comms;
    }

    static void closeAll(List<Communicator> comms) {
        comms.forEach(Communicator::close);
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    void collectivesGiveTheSameResultsAsTheLocalBackend(int n) throws Exception {
        List<Communicator> comms = world(n, Duration.ofSeconds(10));
        try {
            CollectiveChecks.allReduceAgreesWithSequentialReduction(comms, 300_001);
            CollectiveChecks.reduceScatterAndAllGatherRoundTrip(comms);
            CollectiveChecks.broadcastCopiesRootsLongs(comms);
            CollectiveChecks.sendRecvMatchesTagsAndSubGroupsStaySeparate(comms);
            List<float[]> tcp = LocalRanks.run(comms, 20, c -> sum(c, 50_003));
            List<float[]> local = LocalRanks.run(LocalCommunicators.create(n, Duration.ofSeconds(10)), 20, c -> sum(c, 50_003));
            assertArrayEquals(local.get(0), tcp.get(n - 1), 0f, "tcp and local differ bitwise");
            CollectiveChecks.allReduceSendsTheRingOptimum(comms, 4096);
        } finally {
            closeAll(comms);
        }
    }

    private static float[] sum(Communicator c, int length) {
        INDArray a = Nd4j.createFromArray(CollectiveChecks.data(c.rank(), length));
        c.allReduce(a, ReduceOp.SUM);
        return a.toFloatVector();
    }

    @Test
    void aRankThatNeverJoinsFailsTheOthersWithinTheTimeout() throws Exception {
        long t0 = System.nanoTime();
        List<Object> results = connect(3, Duration.ofSeconds(2), 2);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 6000, "took " + ms + " ms");
        assertTrue(results.get(0) instanceof CollieException, String.valueOf(results.get(0)));
        assertTrue(((Throwable) results.get(0)).getMessage().contains("for ranks [2] to register"),
                ((Throwable) results.get(0)).getMessage());
        assertTrue(results.get(1) instanceof CollieException, String.valueOf(results.get(1)));
        assertTrue(((Throwable) results.get(1)).getMessage().contains("rank 1"),
                ((Throwable) results.get(1)).getMessage());
    }

    @Test
    void aRankThatDiesFailsItsPeersWithAClearMessage() throws Exception {
        List<Communicator> comms = world(3, Duration.ofSeconds(2));
        try {
            comms.get(2).close();
            long t0 = System.nanoTime();
            List<Throwable> errors = LocalRanks.failures(comms.subList(0, 2), 10, c -> {
                c.allReduce(Nd4j.ones(DataType.FLOAT, 8), ReduceOp.SUM);
                return null;
            });
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < 4000, "took " + ms + " ms");
            for (Throwable t : errors) {
                assertNotNull(t);
                assertTrue(t instanceof CollieException, String.valueOf(t));
                assertTrue(t.getMessage().startsWith("allReduce: rank "), t.getMessage());
            }
            // rank 0 waits on rank 2, its left neighbour, whose connection is gone
            assertTrue(errors.get(0).getMessage().contains("connection to rank 2 was closed"), errors.get(0).getMessage());
        } finally {
            closeAll(comms);
        }
    }

    @Test
    void aWorldOfOneNeedsNoSockets() {
        try (Communicator c = TcpCommunicator.connect(0, 1, "127.0.0.1", 1, Duration.ofSeconds(1))) {
            INDArray a = Nd4j.createFromArray(1f, 2f);
            c.allReduce(a, ReduceOp.AVG);
            c.barrier();
            assertArrayEquals(new float[] {1f, 2f}, a.toFloatVector());
            assertNull(c.subGroup(new int[] {0}).subGroup(new int[] {0}) == null ? c : null);
        }
    }
}
