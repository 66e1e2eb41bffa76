package dev.collie.serve;

import dev.collie.core.CollieException;
import dev.collie.core.train.Callback;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Serves the model being trained (CoLLiE's server during training): an {@link OpenAiServer} started with training and
 * stopped when it exits. The training thread holds the server's guard for writing from the start of each step to its
 * end, and from the end of training on, and the server decodes each batch of requests under it for reading, so every
 * request sees the weights of one completed step, never a half-updated tensor. The guard is fair: a waiting batch runs
 * before the next step, and that step waits for the batch; an idle server costs a step one uncontended lock.
 * <pre>{@code
 * Trainer.builder()...callbacks(new ServeCallback(OpenAiServer.builder(model, tokenizer).port(8000)), ...)
 * }</pre>
 * Register it before callbacks that replace the weights when training ends (loading the best checkpoint). It serves
 * the weights this rank holds: a whole model (data parallel without ZeRO-3; not tensor or pipeline parallel).
 */
public final class ServeCallback implements Callback {
    private static final Logger LOG = LoggerFactory.getLogger(ServeCallback.class);

    private final ReentrantReadWriteLock guard = new ReentrantReadWriteLock(true);
    private final OpenAiServer.Builder builder;
    private OpenAiServer server;

    /** A callback that builds and starts the server of {@code builder} (its guard set to this callback's). */
    public ServeCallback(OpenAiServer.Builder builder) {
        this.builder = builder.guard(guard);
    }

    /** The server, while training runs. */
    public OpenAiServer server() {
        if (server == null) {
            throw new IllegalStateException("the server runs while training does");
        }
        return server;
    }

    @Override
    public void onTrainBegin(Trainer trainer) {
        OpenAiServer s = builder.build();
        try {
            s.start();
        } catch (RuntimeException e) {
            s.close();
            throw new CollieException("serving the model during training: cannot start the server: "
                    + e.getMessage(), e);
        }
        server = s;
        LOG.info("serving the model being trained at {}", s.url());
    }

    @Override
    public void onBatchBegin(Trainer trainer, long step) {
        lock();
    }

    @Override
    public void onBatchEnd(Trainer trainer, StepStats stats) {
        unlock();
    }

    /** Training is over: the weights may be replaced (the best checkpoint loaded back); no batch runs from now on. */
    @Override
    public void onTrainEnd(Trainer trainer) {
        lock();
    }

    @Override
    public void onTrainExit(Trainer trainer) {
        try {
            if (server != null) {
                server.close();
            }
        } finally {
            server = null;
            while (guard.isWriteLockedByCurrentThread()) {
                guard.writeLock().unlock();
            }
        }
    }

    private void lock() {
        if (!guard.isWriteLockedByCurrentThread()) {
            guard.writeLock().lock();
        }
    }

    private void unlock() {
        if (guard.isWriteLockedByCurrentThread()) {
            guard.writeLock().unlock();
        }
    }
}
