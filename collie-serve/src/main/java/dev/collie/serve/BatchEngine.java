package dev.collie.serve;

import dev.collie.core.CollieException;
import dev.collie.core.train.LanguageModel;
import dev.collie.models.generation.Generator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Function;

/**
 * A queue of generation requests and the one thread that serves them: it takes up to {@code maxBatch} queued rows
 * and decodes them together with {@link Generator#run}, each row with its own settings.
 *
 * <p>At most {@code maxQueue} rows are admitted at once, waiting or being decoded; {@link #submit} refuses more
 * ({@link QueueFullException}). A row cancelled while it waits leaves the queue; one cancelled while it is decoded
 * stops at its next token ({@link Generator.Finish#CANCELLED}) and frees its place then.
 *
 * <p>The worker holds {@code guard}'s read lock around each batch, so whoever holds its write lock (a trainer during
 * a step) keeps the weights still: a batch sees the weights of one completed step.
 */
public final class BatchEngine implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(BatchEngine.class);

    private final Generator generator;
    private final int maxBatch;
    private final int maxQueue;
    private final Semaphore places;
    private final ReadWriteLock guard;
    private final LinkedBlockingQueue<Row> queue = new LinkedBlockingQueue<>();
    private final Thread worker;
    private volatile boolean closed;

    /**
     * @param model    the model to decode with
     * @param decoder  ids to text, for stop strings
     * @param maxBatch the most rows decoded together
     * @param maxQueue the most rows admitted at once (waiting or being decoded)
     * @param guard    held for reading around each batch; null for a lock of its own (nobody else writes)
     */
    public BatchEngine(LanguageModel model, Function<int[], String> decoder, int maxBatch, int maxQueue,
                       ReadWriteLock guard) {
        if (maxBatch < 1 || maxQueue < 1) {
            throw new CollieException("max batch and max queue must be at least 1, got " + maxBatch + " and "
                    + maxQueue);
        }
        this.generator = new Generator(model, decoder);
        this.maxBatch = maxBatch;
        this.maxQueue = maxQueue;
        this.places = new Semaphore(maxQueue);
        this.guard = guard == null ? new ReentrantReadWriteLock() : guard;
        this.worker = new Thread(this::serve, "collie-serve-decoder");
        worker.setDaemon(true);
        worker.start();
    }

    /** Thrown by {@link #submit} when the queue holds {@code maxQueue} rows already. */
    public static final class QueueFullException extends RuntimeException {
        QueueFullException(int maxQueue) {
            super("the server has " + maxQueue + " requests queued or running, its limit (--max-queue); retry later");
        }
    }

    /**
     * Queues {@code requests} (one row each, all admitted or none) and returns their submission, whose rows fill as
     * tokens are picked.
     *
     * @throws QueueFullException when fewer than {@code requests.size()} places are free
     */
    public Submission submit(List<Generator.Request> requests) {
        if (closed) {
            throw new CollieException("the engine is closed");
        }
        if (requests.size() > maxQueue || !places.tryAcquire(requests.size())) {
            throw new QueueFullException(maxQueue);
        }
        Submission s = new Submission(this, requests);
        queue.addAll(s.rows);
        return s;
    }

    /** Rows admitted and not yet finished. */
    public int pending() {
        return maxQueue - places.availablePermits();
    }

    /** Stops the worker; rows still queued or running fail. */
    @Override
    public void close() {
        closed = true;
        worker.interrupt();
        try {
            worker.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        List<Row> left = new ArrayList<>();
        queue.drainTo(left);
        for (Row r : left) {
            r.fail(new CollieException("the server is shutting down"));
        }
    }

    /** The worker: batch after batch, until closed. */
    private void serve() {
        while (!closed) {
            List<Row> batch = new ArrayList<>();
            try {
                batch.add(queue.take());
            } catch (InterruptedException e) {
                return;
            }
            queue.drainTo(batch, maxBatch - 1);
            batch.removeIf(r -> {
                if (r.cancelled) {     // between the queue and here: its submission could not take it out
                    r.finish(new Generator.Completion(new int[0], Generator.Finish.CANCELLED));
                }
                return r.cancelled;
            });
            if (batch.isEmpty()) {
                continue;
            }
            Lock lock = guard.readLock();
            try {
                lock.lockInterruptibly();
            } catch (InterruptedException e) {
                batch.forEach(r -> r.fail(new CollieException("the server is shutting down")));
                return;
            }
            Generator.Result result;
            try {
                List<Generator.Request> requests = new ArrayList<>();
                for (Row r : batch) {
                    requests.add(r.request);
                }
                result = generator.run(requests, (row, id) -> batch.get(row).add(id));
            } catch (RuntimeException | Error e) {
                LOG.error("a batch of {} request(s) failed", batch.size(), e);
                batch.forEach(r -> r.fail(e));
                continue;
            } finally {
                lock.unlock();
            }
            for (int i = 0; i < batch.size(); i++) {
                batch.get(i).finish(result.completions().get(i));
            }
        }
    }

    /** Frees a row's place, once. */
    private void release(Row r) {
        if (!r.released) {
            r.released = true;
            places.release();
        }
    }

    /**
     * The rows of one HTTP request: each row's tokens so far and, once it ended, its completion. Everything is
     * guarded by this object's monitor, which is notified at every change.
     */
    public static final class Submission {
        private final BatchEngine engine;
        private final List<Row> rows = new ArrayList<>();
        private long version;
        private Throwable failure;

        private Submission(BatchEngine engine, List<Generator.Request> requests) {
            this.engine = engine;
            for (Generator.Request q : requests) {
                rows.add(new Row(this, q));
            }
        }

        public int size() {
            return rows.size();
        }

        /** Row {@code i}'s tokens so far. */
        public synchronized int[] tokens(int i) {
            Row r = rows.get(i);
            return Arrays.copyOf(r.tokens, r.count);
        }

        /** Row {@code i}'s completion, or null while it runs. */
        public synchronized Generator.Completion completion(int i) {
            return rows.get(i).completion;
        }

        /** Why the batch of a row failed, or null. */
        public synchronized Throwable failure() {
            return failure;
        }

        /** Whether every row has ended (completed, cancelled or failed). */
        public synchronized boolean done() {
            return failure != null || rows.stream().allMatch(r -> r.completion != null);
        }

        /**
         * Waits until something changed since {@code seen} (a value this returned before; 0 at first) or
         * {@code millis} passed; returns the new value.
         */
        public synchronized long await(long seen, long millis) throws InterruptedException {
            long until = System.currentTimeMillis() + millis;
            while (version == seen && !done()) {
                long left = until - System.currentTimeMillis();
                if (left <= 0) {
                    break;
                }
                wait(left);
            }
            return version;
        }

        /** Waits for every row to end. */
        public synchronized void awaitDone() throws InterruptedException {
            while (!done()) {
                wait();
            }
        }

        /** Stops every row (the client has gone): those waiting leave the queue, those running stop at their next token. */
        public void cancel() {
            for (Row r : rows) {
                r.cancelled = true;
                if (engine.queue.remove(r)) {
                    r.finish(new Generator.Completion(new int[0], Generator.Finish.CANCELLED));
                }
            }
        }

        private synchronized void changed() {
            version++;
            notifyAll();
        }
    }

    /** One request of a batch: its tokens as they come. */
    private static final class Row {
        final Submission owner;
        final Generator.Request request;
        int[] tokens = new int[16];
        int count;
        Generator.Completion completion;
        volatile boolean cancelled;
        boolean released;

        Row(Submission owner, Generator.Request request) {
            this.owner = owner;
            this.request = request;
        }

        /** Records a picked token; false when the row is cancelled (its place is freed at once). */
        boolean add(int id) {
            synchronized (owner) {
                if (count == tokens.length) {
                    tokens = Arrays.copyOf(tokens, count * 2);
                }
                tokens[count++] = id;
                if (cancelled) {
                    owner.engine.release(this);
                }
                owner.changed();
            }
            return !cancelled;
        }

        void finish(Generator.Completion c) {
            synchronized (owner) {
                completion = c;
                owner.engine.release(this);
                owner.changed();
            }
        }

        void fail(Throwable e) {
            synchronized (owner) {
                owner.failure = e;
                owner.engine.release(this);
                owner.changed();
            }
        }
    }
}
