package dev.collie.parallel.tp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.parallel.comm.LocalCommunicators;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Test helper: n in-JVM tensor-parallel ranks, one thread each, and comparisons of shards with full arrays. */
final class TpRanks {
    interface Body<T> {
        T run(Communicator c) throws Exception;
    }

    private TpRanks() {
    }

    /** Runs {@code body} on n fresh local ranks (one thread each) and returns the results in rank order. */
    static <T> List<T> run(int n, Body<T> body) throws Exception {
        List<Communicator> comms = LocalCommunicators.create(n, Duration.ofSeconds(5));
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<T>> fs = new ArrayList<>();
            for (Communicator c : comms) {
                fs.add(pool.submit(() -> body.run(c)));
            }
            List<T> out = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(12);
            for (Future<T> f : fs) {
                try {
                    out.add(f.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof Exception ex) {
                        throw ex;
                    }
                    throw e;
                } catch (TimeoutException e) {
                    throw new AssertionError("ranks did not finish in time", e);
                }
            }
            return out;
        } finally {
            pool.shutdownNow();
            for (Communicator c : comms) {
                c.close();
            }
        }
    }

    /** The shards of the ranks put back together along {@code style}'s split dimension. */
    static INDArray join(List<INDArray> shards, ParallelStyle style) {
        int dim = Shards.splitDim(style);
        if (dim < 0) {
            return shards.get(0);
        }
        return Nd4j.concat(dim, shards.toArray(new INDArray[0]));
    }

    static double maxAbsDiff(INDArray a, INDArray b) {
        if (!java.util.Arrays.equals(a.shape(), b.shape())) {
            throw new AssertionError("shapes differ: " + java.util.Arrays.toString(a.shape()) + " vs "
                    + java.util.Arrays.toString(b.shape()));
        }
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }

    /** A float64 copy outside any workspace. */
    static INDArray copy(INDArray a) {
        try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            return a.castTo(DataType.DOUBLE).dup('c');
        }
    }
}
