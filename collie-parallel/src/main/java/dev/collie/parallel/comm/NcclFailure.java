package dev.collie.parallel.comm;

/**
 * A CUDA or NCCL failure inside the nccl backend, before {@link NcclCommunicator} adds the operation, the rank
 * and the peers to its message and turns it into a {@link dev.collie.core.CollieException}.
 */
final class NcclFailure extends RuntimeException {
    /** Whether the operation ran past its timeout (rather than failing with an error code). */
    final boolean timedOut;

    NcclFailure(boolean timedOut, String message) {
        super(message);
        this.timedOut = timedOut;
    }
}
