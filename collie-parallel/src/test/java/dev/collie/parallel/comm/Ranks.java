package dev.collie.parallel.comm;

import dev.collie.core.dist.Communicator;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Test helper: runs one body per rank on its own thread and collects the results, with a hard time limit. */
final class Ranks {
    interface Body<T> {
        T run(Communicator c) throws Exception;
    }

    private Ranks() { }

    static <T> List<T> run(List<Communicator> comms, long limitSeconds, Body<T> body) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(comms.size());
        try {
            List<Future<T>> fs = new ArrayList<>();
            for (Communicator c : comms) {
                fs.add(pool.submit(() -> body.run(c)));
            }
            List<T> out = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(limitSeconds);
            for (Future<T> f : fs) {
                try {
                    out.add(f.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof Exception ex) {
                        throw ex;
                    }
                    throw e;
                } catch (TimeoutException e) {
                    throw new AssertionError("ranks did not finish within " + limitSeconds + " s", e);
                }
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    /** Runs every rank and returns what each threw (null for none). */
    static List<Throwable> failures(List<Communicator> comms, long limitSeconds, Body<?> body) throws Exception {
        return run(comms, limitSeconds, c -> {
            try {
                body.run(c);
                return null;
            } catch (Throwable t) {
                return t;
            }
        });
    }
}
