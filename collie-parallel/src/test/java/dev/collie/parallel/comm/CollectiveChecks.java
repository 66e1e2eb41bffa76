package dev.collie.parallel.comm;

import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import dev.collie.parallel.comm.LocalRanks;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Backend-independent checks of the collectives, run by the local and the tcp tests. */
final class CollectiveChecks {
    private CollectiveChecks() { }

    static float[] data(int rank, int length) {
        Random r = new Random(1000 + rank);
        float[] f = new float[length];
        for (int i = 0; i < length; i++) {
            f[i] = (float) r.nextGaussian();
        }
        return f;
    }

    /** All-reduce SUM/AVG/MAX on a length that does not divide evenly and spans several chunks. */
    static void allReduceAgreesWithSequentialReduction(List<Communicator> comms, int length) throws Exception {
        int n = comms.size();
        for (ReduceOp op : ReduceOp.values()) {
            List<float[]> results = LocalRanks.run(comms, 30, c -> {
                INDArray a = Nd4j.createFromArray(data(c.rank(), length));
                c.allReduce(a, op);
                return a.toFloatVector();
            });
            float[] first = results.get(0);
            for (float[] r : results) {
                assertArrayEquals(first, r, 0f, "ranks disagree bitwise for " + op);
            }
            float[][] in = new float[n][];
            for (int k = 0; k < n; k++) {
                in[k] = data(k, length);
            }
            for (int i = 0; i < length; i += 997) {
                double expect = op == ReduceOp.MAX ? Double.NEGATIVE_INFINITY : 0;
                for (int k = 0; k < n; k++) {
                    expect = op == ReduceOp.MAX ? Math.max(expect, in[k][i]) : expect + in[k][i];
                }
                if (op == ReduceOp.AVG) {
                    expect /= n;
                }
                assertEquals(expect, first[i], 1e-5, op + " at " + i);
            }
        }
    }

    static void reduceScatterAndAllGatherRoundTrip(List<Communicator> comms) throws Exception {
        int n = comms.size();
        int shard = 5;
        LocalRanks.run(comms, 30, c -> {
            INDArray in = Nd4j.arange(0, n * shard).castTo(DataType.DOUBLE).addi(c.rank() * 100.0);
            INDArray out = Nd4j.create(DataType.DOUBLE, shard);
            c.reduceScatter(in, out, ReduceOp.SUM);
            double base = n * (n - 1) / 2.0 * 100.0;
            for (int i = 0; i < shard; i++) {
                assertEquals(n * (c.rank() * shard + i) + base, out.getDouble(i), 1e-9);
            }
            INDArray gathered = Nd4j.create(DataType.DOUBLE, n * shard);
            c.allGather(out, gathered);
            for (int i = 0; i < n * shard; i++) {
                assertEquals(n * i + base, gathered.getDouble(i), 1e-9);
            }
            return null;
        });
    }

    static void broadcastCopiesRootsLongs(List<Communicator> comms) throws Exception {
        int n = comms.size();
        int root = n - 1;
        List<long[]> got = LocalRanks.run(comms, 30, c -> {
            INDArray a = c.rank() == root ? Nd4j.createFromArray(new long[] {7, -3, Long.MAX_VALUE})
                    : Nd4j.create(DataType.INT64, 3);
            c.broadcast(a, root);
            return a.toLongVector();
        });
        for (long[] g : got) {
            assertArrayEquals(new long[] {7, -3, Long.MAX_VALUE}, g);
        }
    }

    static void sendRecvMatchesTagsAndSubGroupsStaySeparate(List<Communicator> comms) throws Exception {
        int n = comms.size();
        LocalRanks.run(comms, 30, c -> {
            int right = (c.rank() + 1) % n;
            int left = (c.rank() + n - 1) % n;
            c.send(Nd4j.createFromArray(new float[] {c.rank(), 1}), right, 7);
            c.send(Nd4j.createFromArray(new float[] {c.rank(), 2}), right, 3);
            INDArray a = Nd4j.create(DataType.FLOAT, 2);
            c.recv(a, left, 3);
            assertArrayEquals(new float[] {left, 2}, a.toFloatVector());
            c.recv(a, left, 7);
            assertArrayEquals(new float[] {left, 1}, a.toFloatVector());
            // even ranks form a group; odd ranks get null
            int[] evens = IntStream.range(0, n).filter(r -> r % 2 == 0).toArray();
            Communicator g = c.subGroup(evens);
            if (c.rank() % 2 == 1) {
                assertNull(g);
            } else {
                assertEquals(c.rank() / 2, g.rank());
                INDArray x = Nd4j.createFromArray(new double[] {c.rank()});
                g.allReduce(x, ReduceOp.SUM);
                assertEquals(Arrays.stream(evens).sum(), x.getDouble(0), 0);
            }
            c.barrier();
            return null;
        });
    }

    /** An all-reduce of {@code length} floats, which the group size divides, sends the ring optimum 2(n−1)/n·S. */
    static void allReduceSendsTheRingOptimum(List<Communicator> comms, int length) throws Exception {
        int n = comms.size();
        List<Long> bytes = LocalRanks.run(comms, 30, c -> {
            long before = c.bytesSent();
            c.allReduce(Nd4j.create(DataType.FLOAT, length), ReduceOp.SUM);
            return c.bytesSent() - before;
        });
        assertTrue(bytes.stream().allMatch(b -> b == 2L * (n - 1) * length * 4 / n), bytes.toString());
    }
}
