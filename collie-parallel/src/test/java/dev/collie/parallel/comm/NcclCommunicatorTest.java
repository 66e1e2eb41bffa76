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

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The nccl backend. Without a GPU (this project's build machines) it checks that the backend says why it is
 * unavailable and that {@code connect} fails at once with that reason, and it runs the communicator's own logic
 * (rendezvous over tcp, sub-groups, AVG, byte counts, timeouts) over an in-JVM imitation of NCCL. Where CUDA,
 * NCCL and GPUs are present (tools/device/nccl_check.sh) it runs the same checks on real NCCL: a world of one
 * on one GPU, and two ranks (two threads) on two GPUs — NCCL refuses two ranks of one communicator on one GPU.
 */
@Timeout(60)
class NcclCommunicatorTest {
    private static final Duration T = Duration.ofSeconds(10);

    // ---------------------------------------------------------------- without a GPU

    @Test
    void withoutGpuOrNativesTheReasonIsGivenAndConnectFailsAtOnce() {
        long t0 = System.nanoTime();
        Optional<String> reason = NcclCommunicator.unavailableReason();
        long probeMs = (System.nanoTime() - t0) / 1_000_000;
        System.out.println("nccl backend: " + reason.map(r -> "unavailable: " + r).orElse(NcclCommunicator.versions()));
        assumeTrue(reason.isPresent(), "CUDA and NCCL are available here; the GPU tests cover this machine");
        assertTrue(probeMs < 20_000, "probing took " + probeMs + " ms");
        assertFalse(reason.get().isBlank());
        assertEquals(reason, NcclCommunicator.unavailableReason(), "the probe result is cached");
        assertEquals(0, NcclCommunicator.visibleGpus());
        assertEquals(reason.get(), NcclCommunicator.versions());

        LaunchEnv env = env(0, 2, 1); // a world of 2 whose other rank never comes: must not wait for it
        long t1 = System.nanoTime();
        CollieException e = assertThrows(CollieException.class, () -> NcclCommunicator.connect(env, T));
        long connectMs = (System.nanoTime() - t1) / 1_000_000;
        assertTrue(connectMs < 2_000, "connect took " + connectMs + " ms to fail");
        assertTrue(e.getMessage().startsWith("the nccl backend is unavailable: "), e.getMessage());
        assertTrue(e.getMessage().contains(reason.get()), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> NcclCommunicator.connect(env, Duration.ZERO));
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 4})
    void collectivesOverImitatedNcclMeetTheCommunicatorContract(int n) throws Exception {
        FakeNccl fake = new FakeNccl();
        List<Communicator> comms = world(n, T, fake);
        try {
            CollectiveChecks.allReduceAgreesWithSequentialReduction(comms, 300_001);
            CollectiveChecks.reduceScatterAndAllGatherRoundTrip(comms);
            CollectiveChecks.broadcastCopiesRootsLongs(comms);
            if (n > 1) {
                CollectiveChecks.sendRecvMatchesTagsAndSubGroupsStaySeparate(comms);
            }
            integerAverageAndMaxAreExact(comms);
        } finally {
            comms.forEach(Communicator::close);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3, 4})
    void bytesSentMatchTheRingBackendsPerRankAndOperation(int n) throws Exception {
        List<Communicator> nccl = world(n, T, new FakeNccl());
        try {
            List<long[]> a = LocalRanks.run(nccl, 30, NcclCommunicatorTest::bytesPerOperation);
            List<long[]> b = LocalRanks.run(LocalCommunicators.create(n, T), 30, NcclCommunicatorTest::bytesPerOperation);
            for (int r = 0; r < n; r++) {
                assertArrayEquals(b.get(r), a.get(r), "rank " + r + ": nccl " + Arrays.toString(a.get(r))
                        + " vs ring " + Arrays.toString(b.get(r)));
            }
            // and the ring optimum 2(n-1)/n*S for an all-reduce whose length n divides
            CollectiveChecks.allReduceSendsTheRingOptimum(nccl, 12_288);
        } finally {
            nccl.forEach(Communicator::close);
        }
    }

    /** Bytes sent by: uneven all-reduce, reduce-scatter, all-gather, broadcast from rank 1, a send. */
    private static long[] bytesPerOperation(Communicator c) {
        int n = c.size();
        long[] out = new long[5];
        long before = c.bytesSent();
        c.allReduce(Nd4j.create(DataType.FLOAT, 1001), ReduceOp.AVG);
        out[0] = c.bytesSent() - before;
        before = c.bytesSent();
        c.reduceScatter(Nd4j.create(DataType.DOUBLE, 7L * n), Nd4j.create(DataType.DOUBLE, 7), ReduceOp.SUM);
        out[1] = c.bytesSent() - before;
        before = c.bytesSent();
        c.allGather(Nd4j.create(DataType.INT16, 5), Nd4j.create(DataType.INT16, 5L * n));
        out[2] = c.bytesSent() - before;
        before = c.bytesSent();
        c.broadcast(Nd4j.create(DataType.INT64, 9), 1 % n);
        out[3] = c.bytesSent() - before;
        before = c.bytesSent();
        c.send(Nd4j.create(DataType.FLOAT, 3), (c.rank() + 1) % n, 5);
        c.recv(Nd4j.create(DataType.FLOAT, 3), (c.rank() + n - 1) % n, 5);
        out[4] = c.bytesSent() - before;
        return out;
    }

    private static void integerAverageAndMaxAreExact(List<Communicator> comms) throws Exception {
        int n = comms.size();
        LocalRanks.run(comms, 30, c -> {
            INDArray i = Nd4j.createFromArray(new int[] {c.rank() * 3, -7, 100});
            c.allReduce(i, ReduceOp.AVG);
            int sum = 3 * n * (n - 1) / 2;
            assertArrayEquals(new int[] {sum / n, -7, 100}, i.toIntVector());
            INDArray l = Nd4j.createFromArray(new long[] {c.rank(), Long.MIN_VALUE + c.rank()});
            c.allReduce(l, ReduceOp.MAX);
            assertArrayEquals(new long[] {n - 1, Long.MIN_VALUE + n - 1}, l.toLongVector());
            INDArray shard = Nd4j.create(DataType.FLOAT, 2);
            c.reduceScatter(Nd4j.ones(DataType.FLOAT, 2L * n).muli(c.rank() + 1), shard, ReduceOp.AVG);
            assertArrayEquals(new float[] {(n + 1) / 2f, (n + 1) / 2f}, shard.toFloatVector());
            c.barrier();
            return null;
        });
    }

    @Test
    void aRankThatNeverCallsTheCollectiveTimesOutTheOtherWithAClearMessage() throws Exception {
        Duration shortTimeout = Duration.ofMillis(500);
        List<Communicator> comms = world(2, shortTimeout, new FakeNccl());
        try {
            long t0 = System.nanoTime();
            CollieException e = assertThrows(CollieException.class,
                    () -> comms.get(0).allReduce(Nd4j.ones(DataType.FLOAT, 8), ReduceOp.SUM));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < 3_000, "took " + ms + " ms");
            String m = e.getMessage();
            assertTrue(m.startsWith("allReduce: rank 0 of 2 (GPU 0) waited for rank 1, but "), m);
            assertTrue(m.contains("within 500 ms (timeout)"), m);
            assertTrue(m.contains("aborted"), m);
        } finally {
            comms.forEach(Communicator::close);
        }
    }

    @Test
    void subGroupsCommunicateNothingUntilTheirFirstCollectiveAndNameWorldRanks() throws Exception {
        FakeNccl fake = new FakeNccl();
        List<Communicator> comms = world(4, Duration.ofMillis(800), fake);
        try {
            assertEquals(4, fake.joins.get(), "the world joins NCCL at connect");
            Communicator c0 = comms.get(0);
            assertThrows(IllegalArgumentException.class, () -> c0.subGroup(new int[0]));
            assertThrows(IllegalArgumentException.class, () -> c0.subGroup(new int[] {1, 1}));
            assertThrows(IllegalArgumentException.class, () -> c0.subGroup(new int[] {0, 4}));
            assertNull(c0.subGroup(new int[] {1, 3}));
            List<Communicator> subs = LocalRanks.run(comms, 20, c -> c.subGroup(new int[] {3, 1}));
            assertNull(subs.get(0));
            assertNull(subs.get(2));
            assertEquals(4, fake.joins.get(), "making a sub-group joins nothing");
            assertEquals(1, subs.get(1).rank());
            assertEquals(0, subs.get(3).rank());
            List<Communicator> pair = List.of(subs.get(3), subs.get(1));
            List<double[]> sums = LocalRanks.run(pair, 20, g -> {
                INDArray x = Nd4j.createFromArray(new double[] {g.rank() + 1.0});
                g.allReduce(x, ReduceOp.SUM);
                return x.toDoubleVector();
            });
            assertEquals(6, fake.joins.get(), "the sub-group joined at its first collective");
            assertEquals(3.0, sums.get(0)[0]);
            assertEquals(3.0, sums.get(1)[0]);
            // a member that calls alone waits for the other, named with its world rank
            CollieException e = assertThrows(CollieException.class, () -> subs.get(1).barrier());
            assertTrue(e.getMessage().startsWith("barrier: rank 1 of 2 (GPU 1) waited for rank 0"
                    + " (world rank 3), but"), e.getMessage());
            // closing the world closes its sub-groups
            comms.forEach(Communicator::close);
            CollieException closed = assertThrows(CollieException.class,
                    () -> subs.get(3).allReduce(Nd4j.ones(DataType.FLOAT, 1), ReduceOp.SUM));
            assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
        } finally {
            comms.forEach(Communicator::close);
        }
    }

    // ---------------------------------------------------------------- with GPUs

    @Test
    void aWorldOfOneRunsEveryCollectiveThroughNcclOnTheGpu() {
        assumeTrue(NcclCommunicator.unavailableReason().isEmpty(), () -> NcclCommunicator.unavailableReason().get());
        System.out.println("nccl backend: " + NcclCommunicator.versions() + ", " + NcclCommunicator.visibleGpus() + " GPU(s)");
        try (NcclCommunicator c = NcclCommunicator.connect(env(0, 1, 1), T)) {
            INDArray f = Nd4j.createFromArray(1.5f, -2f, 3f);
            c.allReduce(f, ReduceOp.SUM);
            assertArrayEquals(new float[] {1.5f, -2f, 3f}, f.toFloatVector());
            c.allReduce(f, ReduceOp.AVG);
            c.allReduce(f, ReduceOp.MAX);
            assertArrayEquals(new float[] {1.5f, -2f, 3f}, f.toFloatVector());
            INDArray d = Nd4j.createFromArray(1e-300, 2.0);
            c.allReduce(d, ReduceOp.SUM);
            assertArrayEquals(new double[] {1e-300, 2.0}, d.toDoubleVector());
            INDArray l = Nd4j.createFromArray(new long[] {Long.MAX_VALUE, -1});
            c.allReduce(l, ReduceOp.MAX);
            assertArrayEquals(new long[] {Long.MAX_VALUE, -1}, l.toLongVector());
            INDArray big = Nd4j.createFromArray(CollectiveChecks.data(0, 3_000_001)); // grows the staging buffer
            float[] expect = big.toFloatVector();
            c.allReduce(big, ReduceOp.SUM);
            assertArrayEquals(expect, big.toFloatVector(), 0f);
            INDArray in = Nd4j.arange(0, 6).castTo(DataType.INT);
            INDArray shard = Nd4j.create(DataType.INT, 6);
            c.reduceScatter(in, shard, ReduceOp.SUM);
            assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5}, shard.toIntVector());
            INDArray gathered = Nd4j.create(DataType.HALF, 3);
            c.allGather(Nd4j.createFromArray(1f, 2f, 3f).castTo(DataType.HALF), gathered);
            assertArrayEquals(new float[] {1f, 2f, 3f}, gathered.castTo(DataType.FLOAT).toFloatVector());
            INDArray b = Nd4j.createFromArray(new long[] {7, 8});
            c.broadcast(b, 0);
            assertArrayEquals(new long[] {7, 8}, b.toLongVector());
            c.barrier();
            Communicator sub = c.subGroup(new int[] {0});
            INDArray s = Nd4j.createFromArray(4.0f);
            sub.allReduce(s, ReduceOp.SUM);
            assertEquals(4.0f, s.getFloat(0));
            assertEquals(0, c.bytesSent(), "a world of one sends nothing");
        }
    }

    @Test
    void twoRanksOnTwoGpusMeetTheCommunicatorContract() throws Exception {
        assumeTrue(NcclCommunicator.unavailableReason().isEmpty(), () -> NcclCommunicator.unavailableReason().get());
        assumeTrue(NcclCommunicator.visibleGpus() >= 2, "needs two GPUs: NCCL puts each rank of a communicator on its own GPU");
        List<Communicator> comms = world(2, T, null);
        try {
            assertEquals(0, ((NcclCommunicator) comms.get(0)).device());
            assertEquals(1, ((NcclCommunicator) comms.get(1)).device());
            CollectiveChecks.allReduceAgreesWithSequentialReduction(comms, 300_001);
            CollectiveChecks.reduceScatterAndAllGatherRoundTrip(comms);
            CollectiveChecks.broadcastCopiesRootsLongs(comms);
            CollectiveChecks.sendRecvMatchesTagsAndSubGroupsStaySeparate(comms);
            integerAverageAndMaxAreExact(comms);
            List<long[]> a = LocalRanks.run(comms, 30, NcclCommunicatorTest::bytesPerOperation);
            List<long[]> b = LocalRanks.run(LocalCommunicators.create(2, T), 30, NcclCommunicatorTest::bytesPerOperation);
            assertArrayEquals(b.get(0), a.get(0));
            assertArrayEquals(b.get(1), a.get(1));
        } finally {
            comms.forEach(Communicator::close);
        }
    }

    @Test
    void onTwoGpusARankThatNeverCallsTimesOutTheOtherAndNcclIsAborted() throws Exception {
        assumeTrue(NcclCommunicator.unavailableReason().isEmpty(), () -> NcclCommunicator.unavailableReason().get());
        assumeTrue(NcclCommunicator.visibleGpus() >= 2, "needs two GPUs");
        List<Communicator> comms = world(2, Duration.ofSeconds(2), null);
        try {
            long t0 = System.nanoTime();
            CollieException e = assertThrows(CollieException.class,
                    () -> comms.get(0).allReduce(Nd4j.ones(DataType.FLOAT, 1 << 20), ReduceOp.SUM));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < 6_000, "took " + ms + " ms");
            assertTrue(e.getMessage().startsWith("allReduce: rank 0 of 2 (GPU 0) waited for rank 1, but"), e.getMessage());
            CollieException again = assertThrows(CollieException.class, () -> comms.get(0).barrier());
            assertTrue(again.getMessage().contains("aborted"), again.getMessage());
        } finally {
            comms.forEach(Communicator::close);
        }
    }

    // ---------------------------------------------------------------- helpers

    /** torchrun-style variables for one rank on this machine (LOCAL_RANK = RANK). */
    static LaunchEnv env(int rank, int world, int port) {
        return LaunchEnv.from(Map.of("RANK", String.valueOf(rank), "LOCAL_RANK", String.valueOf(rank),
                "WORLD_SIZE", String.valueOf(world), "MASTER_ADDR", "127.0.0.1", "MASTER_PORT", String.valueOf(port),
                LaunchEnv.JOB_SECRET, TcpCommunicatorTest.SECRET_VALUE));
    }

    /** Connects n ranks, one thread each, over real NCCL ({@code fake == null}) or the imitation. */
    static List<Communicator> world(int n, Duration timeout, FakeNccl fake) throws Exception {
        int port = TcpCommunicatorTest.freePort();
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<NcclCommunicator>> fs = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                LaunchEnv e = env(r, n, port);
                fs.add(pool.submit(() -> fake == null ? NcclCommunicator.connect(e, timeout)
                        : NcclCommunicator.connect(e, timeout, fake)));
            }
            List<Communicator> out = new ArrayList<>();
            for (Future<NcclCommunicator> f : fs) {
                out.add(f.get(timeout.toMillis() + 20_000, TimeUnit.MILLISECONDS));
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * An in-JVM imitation of NCCL for ranks that are threads of this JVM: each group is a barrier plus one slot
     * per rank; reductions run in rank order. Device = local rank.
     */
    static final class FakeNccl implements NcclDevice.Factory {
        final AtomicInteger joins = new AtomicInteger();
        private final AtomicLong ids = new AtomicLong();
        private final Map<String, Group> groups = new ConcurrentHashMap<>();

        @Override
        public int device(int localRank) {
            return localRank;
        }

        @Override
        public byte[] uniqueId(int device) {
            byte[] id = new byte[128];
            ByteBuffer.wrap(id).putLong(ids.incrementAndGet()).putLong(System.nanoTime()).putInt(device);
            return id;
        }

        @Override
        public NcclDevice join(int device, byte[] uniqueId, int size, int rank, Duration timeout) {
            Group g = groups.computeIfAbsent(Base64.getEncoder().encodeToString(uniqueId), k -> new Group(size));
            joins.incrementAndGet();
            g.sync(timeout);
            return new Member(g, rank);
        }

        private static final class Group {
            final CyclicBarrier barrier;
            final ByteBuffer[] slots;

            Group(int size) {
                barrier = new CyclicBarrier(size);
                slots = new ByteBuffer[size];
            }

            void sync(Duration timeout) {
                try {
                    barrier.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
                } catch (TimeoutException e) {
                    throw new NcclFailure(true, "NCCL did not finish within " + timeout.toMillis() + " ms (timeout)");
                } catch (BrokenBarrierException e) {
                    throw new NcclFailure(false, "NCCL reported a remote error (a peer aborted)");
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new NcclFailure(false, "interrupted");
                }
            }

            int size() {
                return slots.length;
            }
        }

        private static final class Member implements NcclDevice {
            private final Group g;
            private final int rank;

            Member(Group g, int rank) {
                this.g = g;
                this.rank = rank;
            }

            private static ByteBuffer copy(ByteBuffer b, int from, int len) {
                return Elements.copy(b, from, len);
            }

            @Override
            public void allReduce(ByteBuffer inOut, long count, DataType type, ReduceOp op, Duration timeout) {
                assertDirect(inOut);
                assertTrue(op == ReduceOp.SUM || op == ReduceOp.MAX, "AVG reaches NCCL as SUM");
                g.slots[rank] = copy(inOut, 0, inOut.limit());
                g.sync(timeout);
                ByteBuffer acc = copy(g.slots[0], 0, inOut.limit());
                for (int r = 1; r < g.size(); r++) {
                    Elements.accumulate(type, op, acc, g.slots[r], 0);
                }
                g.sync(timeout);
                Elements.write(inOut, 0, acc);
            }

            @Override
            public void reduceScatter(ByteBuffer in, ByteBuffer out, long countPerRank, DataType type, ReduceOp op,
                                      int rank, Duration timeout) {
                assertDirect(in);
                assertDirect(out);
                assertEquals(this.rank, rank);
                assertEquals(countPerRank * type.width(), out.limit());
                g.slots[rank] = copy(in, 0, in.limit());
                g.sync(timeout);
                int block = out.limit();
                ByteBuffer acc = copy(g.slots[0], rank * block, block);
                for (int r = 1; r < g.size(); r++) {
                    Elements.accumulate(type, op, acc, g.slots[r], rank * block);
                }
                g.sync(timeout);
                Elements.write(out, 0, acc);
            }

            @Override
            public void allGather(ByteBuffer shard, ByteBuffer out, int rank, Duration timeout) {
                assertDirect(shard);
                assertDirect(out);
                g.slots[rank] = copy(shard, 0, shard.limit());
                g.sync(timeout);
                for (int r = 0; r < g.size(); r++) {
                    Elements.write(out, r * shard.limit(), g.slots[r]);
                }
                g.sync(timeout);
            }

            @Override
            public void broadcast(ByteBuffer inOut, int root, boolean isRoot, Duration timeout) {
                assertDirect(inOut);
                assertEquals(isRoot, rank == root);
                if (isRoot) {
                    g.slots[root] = copy(inOut, 0, inOut.limit());
                }
                g.sync(timeout);
                if (!isRoot) {
                    Elements.write(inOut, 0, g.slots[root]);
                }
                g.sync(timeout);
            }

            @Override
            public void barrier(Duration timeout) {
                g.sync(timeout);
            }

            @Override
            public void close() {
            }

            private static void assertDirect(ByteBuffer b) {
                assertNotNull(b);
                assertTrue(b.isDirect(), "NCCL gets direct buffers");
                assertEquals(0, b.position());
                assertEquals(ByteOrder.nativeOrder(), b.order());
            }
        }
    }
}
