package dev.collie.parallel.peft;

import dev.collie.core.dist.Communicator;
import dev.collie.parallel.comm.LocalCommunicators;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Test helper: n in-JVM ranks, one thread each; results in rank order, the first rank's failure rethrown. */
final class Ranks {
    interface Body<T> {
        T run(Communicator c) throws Exception;
    }

    private Ranks() {
    }

    static <T> List<T> run(int n, Body<T> body) throws Exception {
        return run(n, 60, body);
    }

    static <T> List<T> run(int n, int timeoutSeconds, Body<T> body) throws Exception {
        List<Communicator> comms = LocalCommunicators.create(n, Duration.ofSeconds(30));
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<T>> fs = new ArrayList<>();
            for (Communicator c : comms) {
                fs.add(pool.submit(() -> {
                    try (c) {
                        return body.run(c);
                    }
                }));
            }
            List<T> out = new ArrayList<>();
            Exception first = null;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
            for (Future<T> f : fs) {
                try {
                    out.add(f.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
                } catch (ExecutionException e) {
                    Exception ex = e.getCause() instanceof Exception x ? x : new RuntimeException(e.getCause());
                    // report the rank that failed first, not the peers that saw it close its communicator
                    boolean echo = String.valueOf(ex.getMessage()).contains("closed its communicator");
                    if (first == null || (!echo && String.valueOf(first.getMessage()).contains("closed its"))) {
                        first = ex;
                    }
                    out.add(null);
                } catch (TimeoutException e) {
                    throw new AssertionError("ranks did not finish in time", e);
                }
            }
            if (first != null) {
                throw first;
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }
}
