package dev.collie.parallel.comm;

import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import dev.collie.parallel.comm.LocalRanks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Timing of a 16M-float all-reduce with 2 ranks; runs only with {@code -Dcollie.bench=true}
 * ({@code -Dcollie.bench.reps=N} repetitions, default 4; the summary is the median after the first).
 */
@EnabledIfSystemProperty(named = "collie.bench", matches = "true")
@Timeout(120)
class AllReduceBench {
    private static final int N = 16 << 20;
    private static final int REPS = Integer.getInteger("collie.bench.reps", 4);

    @Test
    void allReduceOf16MFloatsWithTwoRanks() throws Exception {
        time("local", LocalCommunicators.create(2, Duration.ofSeconds(60)));
        List<Communicator> tcp = TcpCommunicatorTest.world(2, Duration.ofSeconds(60));
        try {
            time("tcp", tcp);
        } finally {
            tcp.forEach(Communicator::close);
        }
    }

    private static void time(String name, List<Communicator> comms) throws Exception {
        List<Long> slowest = new ArrayList<>();
        for (int rep = 0; rep < REPS; rep++) {
            List<Long> ms = LocalRanks.run(comms, 60, c -> {
                INDArray a = Nd4j.ones(DataType.FLOAT, N);
                c.barrier();
                long t0 = System.nanoTime();
                c.allReduce(a, ReduceOp.SUM);
                return (System.nanoTime() - t0) / 1_000_000;
            });
            System.out.printf("BENCH %s n=2 allReduce 16M floats (64 MiB): rep %d: %s ms%n", name, rep, ms);
            if (rep > 0) {
                slowest.add(Collections.max(ms));
            }
        }
        if (!slowest.isEmpty()) {
            Collections.sort(slowest);
            long median = slowest.get(slowest.size() / 2);
            System.out.printf("BENCH %s summary: median %d ms over reps 1..%d, %.0f MiB/s%n", name, median, REPS - 1,
                    64.0 * 1000 / median);
        }
    }
}
