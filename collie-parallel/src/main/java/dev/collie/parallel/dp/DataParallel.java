package dev.collie.parallel.dp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * Data parallelism (PyTorch DDP's scheme) for one rank: every rank keeps every averaged gradient. The reduction on
 * each trainable parameter's gradient route is a {@link GradientReducer} over a replicated {@link Ownership}: the
 * moment a parameter's gradient is complete it is copied into its bucket, and a full bucket is all-reduced on this
 * rank's communication thread, overlapping the rest of backward, the average written back into the parameter's
 * gradient. {@link #finishReduction()} waits for every bucket; call it after backward and before clipping or
 * {@code optimizer.step()} (the Trainer's gradient route does). A parameter that got no gradient in a step is an
 * error that names it. Fused-backward optimizers (LOMO) get each gradient averaged at once instead.
 *
 * <p>The communicator belongs to the communication thread from construction on; use {@link #average}
 * and {@link #broadcast} for other collectives of this rank.
 */
public final class DataParallel extends ReducerSync {
    /** Default bucket size: 25 MB, as DDP. */
    public static final long DEFAULT_BUCKET_BYTES = 25L * 1024 * 1024;

    /** With {@link #DEFAULT_BUCKET_BYTES}. */
    public DataParallel(Map<String, Parameter> params, Communicator comm) {
        this(params, comm, DEFAULT_BUCKET_BYTES);
    }

    /**
     * Reduces the gradients of the trainable parameters among {@code params} (in registration order) after checking
     * that every rank of {@code comm} has the same parameter names, shapes and types.
     *
     * @throws dev.collie.core.CollieException when the ranks' parameters differ or a peer does not answer
     */
    public DataParallel(Map<String, Parameter> params, Communicator comm, long bucketBytes) {
        super(replicated(params, comm, bucketBytes));
    }

    /** Broadcasts {@code a} from {@code root} to every rank, in place (on the communication thread). */
    public void broadcast(INDArray a, int root) {
        grads.broadcast(a, root);
    }

    /** Gradient bytes all-reduced per step (all buckets). */
    public long gradientBytes() {
        return grads.bucketedBytes();
    }

    /** This rank's communicator (owned by the communication thread; do not call collectives on it directly). */
    public Communicator communicator() {
        return grads.comm();
    }
}
