package dev.collie.parallel.testing;

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

/**
 * Test helper: runs one body per rank, each on its own thread, and collects the results in rank order, with a hard
 * time limit. Every rank runs to its end; if some failed, the call rethrows the failure of the rank that failed
 * first (not a peer that only saw it close its communicator), with the others' attached as suppressed.
 */
public final class Ranks {
    /** What one rank runs. */
    @FunctionalInterface
    public interface Body<T> {
        T run(Communicator c) throws Exception;
    }

    private Ranks() {
    }

    /** Runs {@code body} on each of {@code comms} (left open) and returns the results in rank order. */
    public static <T> List<T> run(List<Communicator> comms, long limitSeconds, Body<T> body) throws Exception {
        Outcomes<T> o = settle(comms, limitSeconds, body);
        Throwable first = null;
        for (Throwable t : o.failures()) {
            if (t != null && (first == null || (isEcho(first) && !isEcho(t)))) {
                first = t;
            }
        }
        if (first == null) {
            first = o.timedOut();
        }
        if (first == null) {
            return o.values();
        }
        for (Throwable t : o.failures()) {
            if (t != null && t != first) {
                first.addSuppressed(t);
            }
        }
        if (o.timedOut() != null && o.timedOut() != first) {
            first.addSuppressed(o.timedOut());
        }
        if (first instanceof Error e) {
            throw e;
        }
        throw (Exception) first;
    }

    /**
     * Runs {@code body} on {@code n} fresh in-JVM ranks whose collectives time out after {@code commTimeout}, and
     * returns the results in rank order. A rank whose body fails closes its communicator, so that its peers fail at
     * once instead of at their timeout; every communicator is closed at the end.
     */
    public static <T> List<T> local(int n, Duration commTimeout, long limitSeconds, Body<T> body) throws Exception {
        List<Communicator> comms = LocalCommunicators.create(n, commTimeout);
        try {
            return run(comms, limitSeconds, c -> {
                try {
                    return body.run(c);
                } catch (Exception | Error e) {
                    c.close();
                    throw e;
                }
            });
        } finally {
            comms.forEach(Communicator::close);
        }
    }

    /** Runs every rank and returns what each threw (null for none). */
    public static List<Throwable> failures(List<Communicator> comms, long limitSeconds, Body<?> body) throws Exception {
        Outcomes<?> o = settle(comms, limitSeconds, body);
        if (o.timedOut() != null) {
            throw o.timedOut();
        }
        return o.failures();
    }

    /** Per rank, in rank order: its result and what it threw (null where none); and whether the time ran out. */
    private record Outcomes<T>(List<T> values, List<Throwable> failures, AssertionError timedOut) {
    }

    /** Runs every rank to its end, or until {@code limitSeconds} have passed in all. */
    private static <T> Outcomes<T> settle(List<Communicator> comms, long limitSeconds, Body<T> body)
            throws InterruptedException {
        ExecutorService pool = Executors.newFixedThreadPool(comms.size());
        try {
            List<Future<T>> fs = new ArrayList<>();
            for (Communicator c : comms) {
                fs.add(pool.submit(() -> body.run(c)));
            }
            List<T> values = new ArrayList<>();
            List<Throwable> failures = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(limitSeconds);
            for (Future<T> f : fs) {
                try {
                    values.add(f.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
                    failures.add(null);
                } catch (ExecutionException e) {
                    values.add(null);
                    failures.add(e.getCause());
                } catch (TimeoutException e) {
                    return new Outcomes<>(values, failures,
                            new AssertionError("ranks did not finish within " + limitSeconds + " s", e));
                }
            }
            return new Outcomes<>(values, failures, null);
        } finally {
            pool.shutdownNow();
        }
    }

    /** A peer's report that a failed rank closed its communicator: a consequence, not the cause. */
    private static boolean isEcho(Throwable t) {
        return String.valueOf(t.getMessage()).contains("closed its communicator");
    }
}
