package dev.collie.parallel.comm;

import dev.collie.core.dist.Communicator;

import java.time.Duration;

/**
 * The {@code tcp} backend: one JVM (or thread) per rank, connected by TCP sockets after a rendezvous at
 * {@code MASTER_ADDR:MASTER_PORT} (rank 0 listens there). Every connection opens with a challenge–response
 * over the job's {@link JobSecret}, so only ranks of this job get in; the messages after it are plain.
 * Collectives are the same ring algorithms as the local backend. All ranks must share one byte order (every
 * x86 and ARM machine does).
 */
public final class TcpCommunicator {
    private TcpCommunicator() { }

    /**
     * Joins a world of {@code worldSize} ranks as {@code rank}, every rank holding the same {@code secret} (which
     * may be {@code null} for a world of one); blocks until all ranks have joined, or fails with a
     * {@link dev.collie.core.CollieException} after {@code timeout} naming the ranks that did not. The same
     * {@code timeout} then bounds each operation.
     */
    public static Communicator connect(int rank, int worldSize, String masterAddr, int masterPort, JobSecret secret,
                                       Duration timeout) {
        return connect(rank, worldSize, masterAddr, masterPort, secret, timeout, timeout);
    }

    /**
     * Joins the world described by a launch environment (torchrun or Slurm variables, the job's secret); the
     * rendezvous waits {@link LaunchEnv#rendezvousTimeout()}, each operation {@code timeout}.
     */
    public static Communicator connect(LaunchEnv env, Duration timeout) {
        return connect(env.rank(), env.worldSize(), env.masterAddr(), env.masterPort(), env.secret(),
                env.rendezvousTimeout(), timeout);
    }

    private static Communicator connect(int rank, int worldSize, String masterAddr, int masterPort, JobSecret secret,
                                        Duration rendezvousTimeout, Duration timeout) {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank " + rank + " is outside a world of size " + worldSize);
        }
        return new RingCommunicator(TcpTransport.connect(rank, worldSize, masterAddr, masterPort, secret,
                rendezvousTimeout), timeout);
    }
}
