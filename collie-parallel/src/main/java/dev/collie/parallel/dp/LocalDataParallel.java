package dev.collie.parallel.dp;

import dev.collie.core.CollieException;
import dev.collie.core.data.Batch;
import dev.collie.core.data.DataLoader;
import dev.collie.core.dist.Communicator;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.train.GradientRoute;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.StepRunner;
import dev.collie.parallel.comm.LocalCommunicators;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Data-parallel training with n ranks as threads of one JVM (the {@code local} communicator backend): each
 * rank has its own model replica, optimizer and {@link DataLoader} view, and per step runs forward/backward
 * of its micro-batches, {@link DataParallel#finish()}, then {@code optimizer.step(lr)}. For tests and
 * single-machine simulation; the Trainer does the same per rank.
 */
public final class LocalDataParallel {
    private LocalDataParallel() { }

    /** What one rank trains: its model replica, its optimizer (over the replica's parameters) and its data view. */
    public record Replica(LanguageModel model, Optimizer optimizer, DataLoader loader) { }

    /** Builds rank {@code rank}'s replica; called on that rank's thread. */
    @FunctionalInterface
    public interface ReplicaFactory {
        Replica create(int rank, int worldSize);
    }

    /**
     * The outcome: per step the loss averaged over the ranks, the replicas (their weights after training) and
     * the bytes each rank sent per step, {@code bytesSent[rank][step]}, counting only gradient all-reduces.
     */
    public record Result(List<Double> losses, List<Replica> replicas, long[][] bytesSent, long gradientBytes) { }

    /**
     * Trains {@code steps} steps of epoch 0 at a constant {@code lr} on {@code worldSize} rank threads.
     * A failure on any rank closes that rank's communicator, so the others fail promptly; the first failure
     * is rethrown (as a {@link CollieException} naming the rank).
     */
    public static Result train(int worldSize, int steps, double lr, Duration timeout, long bucketBytes,
                               ReplicaFactory factory) {
        List<Communicator> comms = LocalCommunicators.create(worldSize, timeout);
        ExecutorService ranks = Executors.newFixedThreadPool(worldSize, r -> {
            Thread t = new Thread(r, "collie-dp-rank");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<RankResult>> futures = new ArrayList<>();
            for (int r = 0; r < worldSize; r++) {
                int rank = r;
                futures.add(ranks.submit(() -> runRank(rank, worldSize, comms.get(rank), steps, lr, bucketBytes, factory)));
            }
            List<RankResult> results = new ArrayList<>();
            CollieException first = null;
            for (int r = 0; r < worldSize; r++) {
                try {
                    results.add(futures.get(r).get());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new CollieException("interrupted while waiting for rank " + r, e);
                } catch (ExecutionException e) {
                    CollieException c = new CollieException("rank " + r + " failed: " + e.getCause().getMessage(),
                            e.getCause());
                    first = first == null ? c : first;
                    if (first != c) {
                        first.addSuppressed(c);
                    }
                }
            }
            if (first != null) {
                throw first;
            }
            long[][] bytes = new long[worldSize][];
            List<Replica> replicas = new ArrayList<>();
            for (int r = 0; r < worldSize; r++) {
                bytes[r] = results.get(r).bytes;
                replicas.add(results.get(r).replica);
            }
            return new Result(results.get(0).losses, replicas, bytes, results.get(0).gradientBytes);
        } finally {
            ranks.shutdownNow();
            comms.forEach(Communicator::close);
        }
    }

    private record RankResult(Replica replica, List<Double> losses, long[] bytes, long gradientBytes) { }

    private static RankResult runRank(int rank, int worldSize, Communicator comm, int steps, double lr,
                                      long bucketBytes, ReplicaFactory factory) {
        try {
            Replica replica = factory.create(rank, worldSize);
            if (replica.loader().numReplicas() != worldSize || replica.loader().rank() != rank) {
                throw new CollieException("rank " + rank + "'s DataLoader is built for rank " + replica.loader().rank()
                        + " of " + replica.loader().numReplicas() + ", not rank " + rank + " of " + worldSize);
            }
            List<Double> losses = new ArrayList<>();
            long[] bytes = new long[steps];
            try (DataParallel dp = new DataParallel(replica.optimizer().parameters(), comm, bucketBytes);
                 StepRunner runner = new StepRunner(replica.model(), 1,
                         Math.max(1, Runtime.getRuntime().availableProcessors() / worldSize))) {
                GradientRoute route = GradientRoute.compose(dp, replica.optimizer());
                Iterator<List<Batch>> it = replica.loader().steps(0, steps);
                for (int s = 0; s < steps; s++) {
                    List<Batch> micro = it.next();
                    long before = comm.bytesSent();
                    double loss = runner.forwardBackward(micro);
                    route.finishBackward();
                    bytes[s] = comm.bytesSent() - before;
                    replica.optimizer().step(lr);
                    losses.add(dp.averageAcrossRanks(loss));
                }
                return new RankResult(replica, losses, bytes, dp.gradientBytes());
            }
        } catch (RuntimeException | Error e) {
            comm.close();   // the peers fail at once instead of waiting for their timeout
            throw e;
        }
    }
}
