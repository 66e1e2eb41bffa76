package dev.collie.parallel.comm;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;

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
 * Ranks as threads of this JVM: runs one body per rank, each on its own thread, and collects the results in rank
 * order (what {@code collie train --local-ranks}, {@code collie bench} and the tests use). A rank whose body fails
 * closes its communicator, so its peers fail at once instead of at their timeout; every rank runs to its end, and
 * the failure of the rank that failed first (not a peer that only saw it close its communicator) is rethrown, with
 * the others' attached as suppressed.
 */
public final class LocalRanks {
    /** What one rank runs. */
    @FunctionalInterface
    public interface Body<T> {
        T run(Communicator c) throws Exception;
    }

    /** No time limit: the ranks' collectives time out instead. */
    public static final long NO_LIMIT = Long.MAX_VALUE / 2_000_000_000L;

    private LocalRanks() {
    }

    /**
     * Runs {@code body} on {@code n} fresh in-JVM ranks whose collectives time out after {@code commTimeout}, and
     * returns the results in rank order; every communicator is closed at the end.
     *
     * @throws AssertionError when the ranks take over {@code limitSeconds} in all
     */
    public static <T> List<T> run(int n, Duration commTimeout, long limitSeconds, Body<T> body) {
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

    /** {@link #run(int, Duration, long, Body)} without a time limit of its own. */
    public static <T> List<T> run(int n, Duration commTimeout, Body<T> body) {
        return run(n, commTimeout, NO_LIMIT, body);
    }

    /** Runs {@code body} on each of {@code comms} (left open) and returns the results in rank order. */
    public static <T> List<T> run(List<Communicator> comms, long limitSeconds, Body<T> body) {
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
        if (first instanceof RuntimeException e) {
            throw e;
        }
        throw new CollieException("rank " + o.failures().indexOf(first) + " failed: " + first.getMessage(), first);
    }

    /**
     * Runs every rank and returns what each threw (null for none), in rank order.
     *
     * @throws AssertionError when the ranks take over {@code limitSeconds} in all
     */
    public static List<Throwable> failures(List<Communicator> comms, long limitSeconds, Body<?> body) {
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
    private static <T> Outcomes<T> settle(List<Communicator> comms, long limitSeconds, Body<T> body) {
        ExecutorService pool = Executors.newFixedThreadPool(comms.size(), r -> {
            Thread t = new Thread(r, "collie-rank");
            t.setDaemon(true);
            return t;
        });
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
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new CollieException("interrupted while waiting for the ranks", e);
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
