package dev.collie.parallel.tp;

import dev.collie.core.dist.Sharding;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.parallel.comm.LocalRanks;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;

/** Test helper: n in-JVM tensor-parallel ranks, one thread each, and comparisons of shards with full arrays. */
final class TpRanks {
    private TpRanks() {
    }

    /** Runs {@code body} on n fresh local ranks (one thread each) and returns the results in rank order. */
    static <T> List<T> run(int n, LocalRanks.Body<T> body) throws Exception {
        return LocalRanks.run(n, Duration.ofSeconds(5), 12, body);
    }

    /** The shards of the ranks put back together along {@code style}'s split dimension. */
    static INDArray join(List<INDArray> shards, ParallelStyle style) {
        int dim = Sharding.dimOf(style);
        if (dim < 0) {
            return shards.get(0);
        }
        return Nd4j.concat(dim, shards.toArray(new INDArray[0]));
    }

    static double maxAbsDiff(INDArray a, INDArray b) {
        if (!Arrays.equals(a.shape(), b.shape())) {
            throw new AssertionError("shapes differ: " + Arrays.toString(a.shape()) + " vs "
                    + Arrays.toString(b.shape()));
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
