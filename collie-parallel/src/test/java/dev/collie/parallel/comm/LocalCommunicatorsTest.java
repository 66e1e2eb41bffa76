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

import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(20)
class LocalCommunicatorsTest {
    private static final Duration T = Duration.ofSeconds(10);

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 5})
    void allReduceAgreesBitwiseAcrossRanksAndWithSequentialSum(int n) throws Exception {
        // 600_001 floats: uneven blocks, and more than one 1 MiB chunk per block for n ≤ 2
        CollectiveChecks.allReduceAgreesWithSequentialReduction(LocalCommunicators.create(n, T), 600_001);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 4})
    void reduceScatterThenAllGatherGivesTheFullSum(int n) throws Exception {
        CollectiveChecks.reduceScatterAndAllGatherRoundTrip(LocalCommunicators.create(n, T));
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3})
    void broadcastCopiesTheRootsInt64Array(int n) throws Exception {
        CollectiveChecks.broadcastCopiesRootsLongs(LocalCommunicators.create(n, T));
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    void sendRecvMatchByTagAndSubGroupsReduceAmongMembersOnly(int n) throws Exception {
        CollectiveChecks.sendRecvMatchesTagsAndSubGroupsStaySeparate(LocalCommunicators.create(n, T));
    }

    @Test
    void repeatedAllReducesGiveBitIdenticalResults() throws Exception {
        float[] first = null;
        for (int run = 0; run < 3; run++) {
            List<float[]> r = LocalRanks.run(LocalCommunicators.create(4, T), 20, c -> {
                INDArray a = Nd4j.createFromArray(CollectiveChecks.data(c.rank(), 10_007));
                c.allReduce(a, ReduceOp.SUM);
                return a.toFloatVector();
            });
            if (first == null) {
                first = r.get(0);
            }
            assertArrayEquals(first, r.get(3), 0f);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 4, 8})
    void allReduceSendsWhatARingSendsPerRank(int n) throws Exception {
        int length = 1 << 18; // 1 MiB of floats
        List<Long> bytes = LocalRanks.run(LocalCommunicators.create(n, T), 20, c -> {
            INDArray a = Nd4j.rand(DataType.FLOAT, length);
            long before = c.bytesSent();
            c.allReduce(a, ReduceOp.SUM);
            return c.bytesSent() - before;
        });
        double ideal = 2.0 * (n - 1) / n * length * 4;
        for (long b : bytes) {
            double ratio = b / ideal;
            System.out.printf("all-reduce n=%d: %d bytes per rank, ratio to 2(n-1)/n*S = %.4f%n", n, b, ratio);
            assertTrue(ratio <= 1.05 && ratio >= 0.95, "ratio " + ratio);
        }
    }

    @Test
    void aMissingPeerFailsWithinTheTimeoutNamingOperationAndPeer() throws Exception {
        List<Communicator> comms = LocalCommunicators.create(3, Duration.ofMillis(300));
        // rank 2 never calls allReduce
        List<Throwable> errors = LocalRanks.failures(comms.subList(0, 2), 10, c -> {
            c.allReduce(Nd4j.ones(DataType.FLOAT, 6), ReduceOp.SUM);
            return null;
        });
        for (Throwable t : errors) {
            assertTrue(t instanceof CollieException, String.valueOf(t));
            assertTrue(t.getMessage().startsWith("allReduce: rank "), t.getMessage());
            assertTrue(t.getMessage().contains("within 300 ms"), t.getMessage());
        }
        assertTrue(errors.get(0).getMessage().contains("received nothing from rank 2"), errors.get(0).getMessage());
    }

    @Test
    void aClosedPeerFailsTheWaiterAtOnce() throws Exception {
        List<Communicator> comms = LocalCommunicators.create(2, T);
        comms.get(1).close();
        long t0 = System.nanoTime();
        CollieException e = assertThrows(CollieException.class,
                () -> comms.get(0).recv(Nd4j.create(DataType.FLOAT, 1), 1, 0));
        assertTrue(System.nanoTime() - t0 < 2_000_000_000L);
        assertTrue(e.getMessage().contains("rank 1 closed its communicator"), e.getMessage());
    }

    @Test
    void mismatchedLengthsAreReportedNotHung() throws Exception {
        List<Throwable> errors = LocalRanks.failures(LocalCommunicators.create(2, Duration.ofMillis(500)), 10, c -> {
            c.broadcast(Nd4j.create(DataType.FLOAT, c.rank() == 0 ? 4 : 5), 0);
            return null;
        });
        assertTrue(errors.get(1).getMessage().contains("expected 20 bytes from rank 0 but got 16"),
                String.valueOf(errors.get(1)));
    }

    @Test
    void badArgumentsAreRejectedUpFront() {
        Communicator c = LocalCommunicators.create(2, T).get(0);
        assertThrows(IllegalArgumentException.class, () -> c.allReduce(Nd4j.rand(3, 4).transpose(), ReduceOp.SUM));
        assertThrows(IllegalArgumentException.class,
                () -> c.allReduce(Nd4j.create(DataType.HALF, 4), ReduceOp.SUM));
        assertThrows(IllegalArgumentException.class,
                () -> c.reduceScatter(Nd4j.create(DataType.FLOAT, 5), Nd4j.create(DataType.FLOAT, 2), ReduceOp.SUM));
        assertThrows(IllegalArgumentException.class, () -> c.broadcast(Nd4j.create(DataType.FLOAT, 1), 2));
        assertThrows(IllegalArgumentException.class, () -> c.send(Nd4j.create(DataType.FLOAT, 1), 1, -1));
        assertThrows(IllegalArgumentException.class, () -> c.subGroup(new int[] {0, 0}));
        assertThrows(IllegalArgumentException.class, () -> c.subGroup(new int[] {}));
        assertNull(c.subGroup(new int[] {1}));
        assertEquals(0, c.subGroup(new int[] {1, 0}).rank() - 1);
    }

    @Test
    void aRowViewOfAMatrixCanBeReducedInPlace() throws Exception {
        LocalRanks.run(LocalCommunicators.create(2, T), 10, c -> {
            INDArray m = Nd4j.zeros(DataType.FLOAT, 3, 4);
            INDArray row = m.getRow(1);
            row.assign(c.rank() + 1);
            c.allReduce(row, ReduceOp.SUM);
            assertEquals(3f * 4, m.sumNumber().floatValue(), 0f);
            assertEquals(0f, m.getRow(0).sumNumber().floatValue(), 0f);
            return null;
        });
    }
}
