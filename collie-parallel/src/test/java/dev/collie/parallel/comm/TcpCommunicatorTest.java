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
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(30)
class TcpCommunicatorTest {

    /** The secret of the test jobs (COLLIE_JOB_SECRET): every tcp world the tests build shares it. */
    static final String SECRET_VALUE = "collie-test-job-secret";
    static final JobSecret SECRET = JobSecret.of(SECRET_VALUE);

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Starts rank {@code rank} of an n-rank test job at {@code port} on a thread of {@code pool}. */
    static Future<Communicator> start(ExecutorService pool, int rank, int n, int port, JobSecret secret,
                                      Duration timeout) {
        return pool.submit(() -> TcpCommunicator.connect(rank, n, "127.0.0.1", port, secret, timeout));
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
                fs.add(start(pool, rank, n, port, SECRET, timeout));
            }
            return results(fs, timeout.toMillis() + 5000);
        } finally {
            pool.shutdownNow();
        }
    }

    /** Each future's communicator, or the exception it failed with. */
    static List<Object> results(List<Future<Communicator>> fs, long waitMillis) throws Exception {
        List<Object> out = new ArrayList<>();
        for (Future<Communicator> f : fs) {
            try {
                out.add(f.get(waitMillis, TimeUnit.MILLISECONDS));
            } catch (ExecutionException e) {
                out.add(e.getCause());
            }
        }
        return out;
    }

    /** The communicators of {@code results}, failing the test if one of them is an exception. */
    static List<Communicator> communicators(List<Object> results) {
        List<Communicator> comms = new ArrayList<>();
        for (Object o : results) {
            if (o instanceof Throwable t) {
                throw new AssertionError("connect failed", t);
            }
            comms.add((Communicator) o);
        }
        return comms;
    }

    /** Every rank all-reduces a vector of ones and gets the world size. */
    static void assertAllReduceWorks(List<Communicator> comms) {
        List<float[]> sums = LocalRanks.run(comms, 10, c -> {
            INDArray a = Nd4j.ones(DataType.FLOAT, 1000);
            c.allReduce(a, ReduceOp.SUM);
            return a.toFloatVector();
        });
        float[] expected = new float[1000];
        Arrays.fill(expected, comms.size());
        for (float[] s : sums) {
            assertArrayEquals(expected, s, 0f);
        }
    }

    static List<Communicator> world(int n, Duration timeout) throws Exception {
        return communicators(connect(n, timeout));
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
        assertTrue(((Throwable) results.get(0)).getMessage().contains("rank 2 of 3 did not arrive at 127.0.0.1:"),
                ((Throwable) results.get(0)).getMessage());
        assertTrue(((Throwable) results.get(0)).getMessage().endsWith("within 2 s"),
                ((Throwable) results.get(0)).getMessage());
        assertTrue(results.get(1) instanceof CollieException, String.valueOf(results.get(1)));
        assertTrue(((Throwable) results.get(1)).getMessage().contains("rank 1"),
                ((Throwable) results.get(1)).getMessage());
    }

    /** COLLIE_RENDEZVOUS_TIMEOUT bounds the wait of a job launched from the environment; the error lists who is missing. */
    @Test
    void ranksThatNeverArriveAreNamedWithinTheRendezvousTimeoutOfTheEnvironment() throws Exception {
        int port = freePort();
        LaunchEnv env = LaunchEnv.from(Map.of("RANK", "0", "WORLD_SIZE", "4", "MASTER_PORT", String.valueOf(port),
                LaunchEnv.JOB_SECRET, "s", LaunchEnv.RENDEZVOUS_TIMEOUT, "1"));
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Future<Communicator> rank1 = start(pool, 1, 4, port, JobSecret.of("s"), Duration.ofSeconds(30));
            long t0 = System.nanoTime();
            CollieException e = assertThrows(CollieException.class,
                    () -> TcpCommunicator.connect(env, Duration.ofSeconds(60)));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < 3000, "took " + ms + " ms");
            assertEquals("tcp rendezvous: ranks 2, 3 of 4 did not arrive at 127.0.0.1:" + port + " within 1 s",
                    e.getMessage());
            ExecutionException dropped = assertThrows(ExecutionException.class, () -> rank1.get(10, TimeUnit.SECONDS));
            assertTrue(dropped.getCause().getMessage().contains("rank 0 closed the connection before sending the"
                    + " address table to rank 1"), dropped.getCause().getMessage());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void anUnresolvableMasterAddressIsNamedWithinTheTimeout() {
        for (int rank : new int[] {0, 1}) {
            long t0 = System.nanoTime();
            CollieException e = assertThrows(CollieException.class, () -> TcpCommunicator.connect(rank, 2,
                    "no-such-host.invalid", 29999, SECRET, Duration.ofMillis(1500)));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < 5000, "took " + ms + " ms");
            assertTrue(e.getMessage().startsWith("tcp rendezvous: rank " + rank
                    + " could not resolve MASTER_ADDR 'no-such-host.invalid' within 1.5 s"), e.getMessage());
        }
    }

    /** A second job's rank 0 cannot take a port the first job's rank 0 listens on, and says why. */
    @Test
    void aSecondJobsMasterOnTheSamePortIsToldThePortIsInUse() throws Exception {
        int port = freePort();
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Future<Communicator> first = start(pool, 0, 2, port, SECRET, Duration.ofSeconds(5));
            awaitListening(port);
            CollieException e = assertThrows(CollieException.class, () -> TcpCommunicator.connect(0, 2, "127.0.0.1",
                    port, JobSecret.of("another job"), Duration.ofSeconds(5)));
            assertEquals("tcp rendezvous: master port " + port + " is in use (another job?): rank 0 cannot listen on"
                    + " 127.0.0.1:" + port, e.getMessage());
            first.cancel(true);
        } finally {
            pool.shutdownNow();
        }
    }

    /** Waits until something listens on {@code port} of loopback. */
    static void awaitListening(int port) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (System.nanoTime() < deadline) {
            try (Socket s = new Socket("127.0.0.1", port)) {
                return;
            } catch (IOException e) {
                Thread.sleep(20);
            }
        }
        throw new AssertionError("nothing listens on port " + port);
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
        try (Communicator c = TcpCommunicator.connect(0, 1, "127.0.0.1", 1, null, Duration.ofSeconds(1))) {
            INDArray a = Nd4j.createFromArray(1f, 2f);
            c.allReduce(a, ReduceOp.AVG);
            c.barrier();
            assertArrayEquals(new float[] {1f, 2f}, a.toFloatVector());
            assertNull(c.subGroup(new int[] {0}).subGroup(new int[] {0}) == null ? c : null);
        }
    }
}
