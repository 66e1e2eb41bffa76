package dev.collie.parallel.dp;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;

import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A rank's single communication thread: every collective of the rank runs here, in the order it was
 * submitted, so ranks that submit the same sequence issue the same sequence (the communicator is used by
 * this thread only). Asynchronous work (a gradient bucket's reduction, launched from a gradient hook) and
 * synchronous work (a gather of parameters before a layer runs, a broadcast after the optimizer step) share
 * the queue. Once a collective fails the ranks are out of step: later submissions fail at once.
 */
final class CommThread implements AutoCloseable {
    private final Communicator comm;
    /** Who this rank is in messages: "data parallel rank 1", "ZeRO-2 rank 0". */
    private final String who;
    private final ExecutorService exec;
    private volatile Throwable failure;

    /** The thread of {@code comm}'s rank, named in messages after {@code label} ("data parallel", "ZeRO-2"). */
    CommThread(Communicator comm, String label) {
        this.comm = comm;
        int rank = comm.rank();
        this.who = label + " rank " + rank;
        this.exec = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "collie-dp-comm-" + rank);
            t.setDaemon(true);
            return t;
        });
    }

    Communicator comm() {
        return comm;
    }

    /** How long a caller waits for one submitted task (it may queue behind others). */
    long waitMs() {
        return waitMs(comm);
    }

    /** How long a caller waits for one task on a communication thread of {@code comm} (it may queue behind others). */
    static long waitMs(Communicator comm) {
        return comm.timeout().toMillis() * Math.max(2, 2L * comm.size()) + 1000;
    }

    /**
     * Queues {@code task}; it is skipped (and its future fails) if an earlier collective failed.
     * {@code cleanup} runs after it, or instead of it when skipped.
     */
    Future<?> submit(Runnable task, Runnable cleanup) {
        return exec.submit(() -> {
            try {
                if (failure != null) {
                    throw new CollieException("an earlier collective of this rank failed", failure);
                }
                task.run();
            } catch (RuntimeException | Error e) {
                failure = failure == null ? e : failure;
                throw e;
            } finally {
                cleanup.run();
            }
        });
    }

    /** Runs {@code task} on the communication thread after everything queued before it; waits for its result. */
    <T> T call(Callable<T> task, String what) {
        if (failure != null) {
            throw new CollieException(who + ": cannot start " + what + ": an earlier"
                    + " collective failed (" + failure.getMessage() + ")", failure);
        }
        Future<T> f = exec.submit(() -> {
            if (failure != null) {
                throw new CollieException("an earlier collective of this rank failed", failure);
            }
            try {
                return task.call();
            } catch (RuntimeException | Error e) {
                failure = e;
                throw e;
            }
        });
        return await(f, what);
    }

    /** Waits for a submitted task. */
    <T> T await(Future<T> f, String what) {
        long waitMs = waitMs();
        try {
            return f.get(waitMs, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CollieException(who + ": interrupted while " + what, e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            throw new CollieException(who + ": failed while " + what + " (a peer rank failed"
                    + " or is gone): " + c.getMessage(), c);
        } catch (TimeoutException e) {
            TimeoutException t = new TimeoutException("no answer within " + waitMs + " ms while " + what);
            failure = t;
            throw new CollieException(who + ": no answer within " + waitMs + " ms while "
                    + what + " (a peer rank is stuck or gone)");
        }
    }

    /**
     * Stops the thread and waits for a collective it is running to end (with the communicator closed or a
     * peer gone it fails fast); false when it did not within {@link #waitMs()}: then the buffers it may still
     * touch must not be freed.
     */
    boolean stop() {
        return stop(exec, waitMs());
    }

    /** Interrupts {@code exec}'s thread and waits up to {@code waitMs} for its task to end; false when it did not. */
    static boolean stop(ExecutorService exec, long waitMs) {
        exec.shutdownNow();
        try {
            return exec.awaitTermination(waitMs, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    @Override
    public void close() {
        stop();
    }
}
