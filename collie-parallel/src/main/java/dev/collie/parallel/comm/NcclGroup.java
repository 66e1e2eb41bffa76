package dev.collie.parallel.comm;

import dev.collie.core.dist.ReduceOp;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.nccl.ncclComm;
import org.bytedeco.cuda.nccl.ncclUniqueId;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.linalg.api.buffer.DataType;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;

import static org.bytedeco.cuda.global.cudart.cudaErrorNotReady;
import static org.bytedeco.cuda.global.cudart.cudaFree;
import static org.bytedeco.cuda.global.cudart.cudaMalloc;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyAsync;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToHost;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyHostToDevice;
import static org.bytedeco.cuda.global.cudart.cudaSetDevice;
import static org.bytedeco.cuda.global.cudart.cudaStreamCreateWithFlags;
import static org.bytedeco.cuda.global.cudart.cudaStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cudaStreamNonBlocking;
import static org.bytedeco.cuda.global.cudart.cudaStreamQuery;
import static org.bytedeco.cuda.global.cudart.cudaSuccess;
import static org.bytedeco.cuda.global.nccl.ncclAllGather;
import static org.bytedeco.cuda.global.nccl.ncclAllReduce;
import static org.bytedeco.cuda.global.nccl.ncclBroadcast;
import static org.bytedeco.cuda.global.nccl.ncclCommAbort;
import static org.bytedeco.cuda.global.nccl.ncclCommDestroy;
import static org.bytedeco.cuda.global.nccl.ncclCommGetAsyncError;
import static org.bytedeco.cuda.global.nccl.ncclCommInitRank;
import static org.bytedeco.cuda.global.nccl.ncclFloat32;
import static org.bytedeco.cuda.global.nccl.ncclFloat64;
import static org.bytedeco.cuda.global.nccl.ncclInt32;
import static org.bytedeco.cuda.global.nccl.ncclInt64;
import static org.bytedeco.cuda.global.nccl.ncclMax;
import static org.bytedeco.cuda.global.nccl.ncclReduceScatter;
import static org.bytedeco.cuda.global.nccl.ncclSuccess;
import static org.bytedeco.cuda.global.nccl.ncclSum;
import static org.bytedeco.cuda.global.nccl.ncclUint8;

/**
 * One rank's NCCL communicator with its CUDA stream and its device staging buffer.
 *
 * <p>Every operation takes host memory (direct byte buffers): it copies the input to the staging buffer on
 * the group's own stream, launches the NCCL collective there, polls {@code cudaStreamQuery} until the stream
 * is idle or the timeout passes, and only then copies the result back (a device-to-host copy into pageable
 * memory blocks the calling thread, so it is enqueued only once nothing can hang any more). On a timeout,
 * an error reported by CUDA or NCCL, or an interrupt, the NCCL communicator is aborted
 * ({@code ncclCommAbort}) and every later call fails. The staging buffer is allocated with
 * {@code cudaMalloc} in power-of-two size classes (at least 1 MiB) and kept for the group's lifetime; the
 * collectives run in place in it, so one buffer serves every operation.
 *
 * <p>Touched only after {@link NcclNative#probe()} succeeded (see {@link NcclNative}).
 */
final class NcclGroup implements NcclDevice {
    private static final long MIN_BUFFER = 1L << 20;

    /** Real GPUs: rank {@code localRank} uses GPU {@code localRank % cudaGetDeviceCount()}. */
    static final NcclDevice.Factory NATIVE = new NcclDevice.Factory() {
        @Override
        public int device(int localRank) {
            int n = NcclNative.deviceCount();
            if (n < 1) {
                throw new NcclFailure(false, "no GPU is visible");
            }
            return localRank % n;
        }

        @Override
        public byte[] uniqueId(int device) {
            return NcclNative.uniqueId(device);
        }

        @Override
        public NcclDevice join(int device, byte[] uniqueId, int size, int rank, Duration timeout) {
            return create(device, uniqueId, size, rank, timeout);
        }
    };

    final int device;
    private final ncclComm comm;
    private final CUstream_st stream;
    private Pointer buffer;
    private long capacity;
    private String abortedBecause;
    private boolean closed;

    private NcclGroup(int device, ncclComm comm, CUstream_st stream) {
        this.device = device;
        this.comm = comm;
        this.stream = stream;
    }

    /**
     * {@code ncclCommInitRank} for {@code rank} of {@code size} on {@code device}. NCCL 2.11 has no
     * non-blocking init, so it runs on a daemon thread that is abandoned (and its communicator aborted, should
     * it ever finish) if it does not return within {@code timeout}.
     */
    static NcclGroup create(int device, byte[] uniqueId, int size, int rank, Duration timeout) {
        CompletableFuture<ncclComm> done = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                NcclNative.check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
                ncclUniqueId id = new ncclUniqueId();
                for (int i = 0; i < uniqueId.length; i++) {
                    id.internal(i, uniqueId[i]);
                }
                ncclComm c = new ncclComm();
                int r = ncclCommInitRank(c, size, id, rank);
                id.close();
                if (r != ncclSuccess) {
                    done.completeExceptionally(new NcclFailure(false, "ncclCommInitRank(rank " + rank + " of " + size
                            + ", GPU " + device + ") failed with " + NcclNative.ncclError(r)
                            + "; every rank of a communicator needs its own GPU (GPU = LOCAL_RANK % visible GPUs)"));
                } else if (!done.complete(c)) {
                    ncclCommAbort(c); // the caller gave up waiting
                }
            } catch (Throwable e) {
                done.completeExceptionally(e);
            }
        }, "nccl-init-rank-" + rank);
        t.setDaemon(true);
        t.start();
        ncclComm comm;
        try {
            comm = done.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            abandon(done);
            throw new NcclFailure(true, "ncclCommInitRank did not return within " + timeout.toMillis() + " ms");
        } catch (InterruptedException e) {
            abandon(done);
            Thread.currentThread().interrupt();
            throw new NcclFailure(false, "interrupted while waiting for ncclCommInitRank");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof NcclFailure f) {
                throw f;
            }
            throw new NcclFailure(false, "ncclCommInitRank failed: " + NcclNative.oneLine(e.getCause()));
        }
        NcclNative.check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
        CUstream_st stream = new CUstream_st();
        int err = cudaStreamCreateWithFlags(stream, cudaStreamNonBlocking);
        if (err != cudaSuccess) {
            ncclCommDestroy(comm);
            throw new NcclFailure(false, "cudaStreamCreateWithFlags failed with " + NcclNative.cudaError(err));
        }
        return new NcclGroup(device, comm, stream);
    }

    /** Gives up on an init: the init thread aborts its communicator should it still finish. */
    private static void abandon(CompletableFuture<ncclComm> done) {
        if (!done.cancel(false) && !done.isCompletedExceptionally()) {
            ncclCommAbort(done.join()); // it finished between the wait and the cancel
        }
    }

    /** NCCL's type for a reducible ND4J type. */
    static int reductionType(DataType t) {
        return switch (t) {
            case FLOAT -> ncclFloat32;
            case DOUBLE -> ncclFloat64;
            case INT -> ncclInt32;
            case LONG -> ncclInt64;
            default -> throw new IllegalArgumentException("no NCCL reduction type for " + t);
        };
    }

    /** NCCL's operator; the communicator passes SUM for AVG and divides afterwards, as the ring backends do. */
    static int reductionOp(ReduceOp op) {
        return switch (op) {
            case SUM -> ncclSum;
            case MAX -> ncclMax;
            default -> throw new IllegalArgumentException("NcclGroup reduces with SUM or MAX, not " + op);
        };
    }

    // ---------------------------------------------------------------- operations

    @Override
    public void allReduce(ByteBuffer inOut, long count, DataType type, ReduceOp op, Duration timeout) {
        long start = begin(inOut.limit());
        toDevice(inOut, 0);
        launched(ncclAllReduce(buffer, buffer, count, reductionType(type), reductionOp(op), comm, stream),
                "ncclAllReduce");
        await(start, timeout);
        toHost(inOut, 0, start, timeout);
    }

    @Override
    public void reduceScatter(ByteBuffer in, ByteBuffer out, long countPerRank, DataType type, ReduceOp op, int rank,
                              Duration timeout) {
        long start = begin(in.limit());
        toDevice(in, 0);
        // in place: NCCL requires recvbuff == sendbuff + rank * recvcount
        long at = (long) rank * out.limit();
        launched(ncclReduceScatter(buffer, offset(at), countPerRank, reductionType(type), reductionOp(op), comm, stream),
                "ncclReduceScatter");
        await(start, timeout);
        toHost(out, at, start, timeout);
    }

    @Override
    public void allGather(ByteBuffer shard, ByteBuffer out, int rank, Duration timeout) {
        long start = begin(out.limit());
        // in place: NCCL requires sendbuff == recvbuff + rank * sendcount
        long at = (long) rank * shard.limit();
        toDevice(shard, at);
        launched(ncclAllGather(offset(at), buffer, shard.limit(), ncclUint8, comm, stream), "ncclAllGather");
        await(start, timeout);
        toHost(out, 0, start, timeout);
    }

    @Override
    public void broadcast(ByteBuffer inOut, int root, boolean isRoot, Duration timeout) {
        long start = begin(inOut.limit());
        if (isRoot) {
            toDevice(inOut, 0);
        }
        launched(ncclBroadcast(buffer, buffer, inOut.limit(), ncclUint8, root, comm, stream), "ncclBroadcast");
        await(start, timeout);
        if (!isRoot) {
            toHost(inOut, 0, start, timeout);
        }
    }

    /** A one-element all-reduce on the device: returns once every rank has launched it. */
    @Override
    public void barrier(Duration timeout) {
        long start = begin(4);
        launched(ncclAllReduce(buffer, buffer, 1, ncclInt32, ncclSum, comm, stream), "ncclAllReduce (barrier)");
        await(start, timeout);
    }

    /** Destroys the communicator (or aborts it if an operation failed) and frees the stream and the buffer. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        cudaSetDevice(device);
        if (abortedBecause == null) {
            ncclCommDestroy(comm);
        }
        cudaStreamDestroy(stream);
        if (buffer != null) {
            cudaFree(buffer);
            buffer = null;
        }
    }

    // ---------------------------------------------------------------- staging

    private long begin(long bytes) {
        long start = System.nanoTime();
        if (closed) {
            throw new NcclFailure(false, "the communicator is closed");
        }
        if (abortedBecause != null) {
            throw new NcclFailure(false, "the NCCL communicator was aborted after an earlier failure ("
                    + abortedBecause + "); create a new one");
        }
        NcclNative.check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
        if (bytes > capacity) {
            long want = Math.max(MIN_BUFFER, Long.highestOneBit(bytes - 1) << 1);
            if (buffer != null) {
                cudaFree(buffer); // the stream is idle: every operation waits before it returns
                buffer = null;
                capacity = 0;
            }
            Pointer p = new Pointer();
            int err = cudaMalloc(p, want);
            if (err != cudaSuccess) {
                throw new NcclFailure(false, "cudaMalloc(" + want + " bytes) on GPU " + device + " failed with "
                        + NcclNative.cudaError(err));
            }
            buffer = p;
            capacity = want;
        }
        return start;
    }

    private void toDevice(ByteBuffer host, long at) {
        try (BytePointer h = new BytePointer(host)) {
            copy(cudaMemcpyAsync(offset(at), h, host.limit(), cudaMemcpyHostToDevice, stream), "host to device");
        }
    }

    private void toHost(ByteBuffer host, long at, long start, Duration timeout) {
        try (BytePointer h = new BytePointer(host)) {
            copy(cudaMemcpyAsync(h, offset(at), host.limit(), cudaMemcpyDeviceToHost, stream), "device to host");
        }
        await(start, timeout);
    }

    private void copy(int err, String what) {
        if (err != cudaSuccess) {
            abort("cudaMemcpyAsync " + what + " failed with " + NcclNative.cudaError(err));
            throw new NcclFailure(false, abortedBecause);
        }
    }

    private void launched(int result, String call) {
        if (result != ncclSuccess) {
            abort(call + " failed with " + NcclNative.ncclError(result));
            throw new NcclFailure(false, abortedBecause);
        }
    }

    /** Polls the stream until it is idle; aborts the communicator on an error, an interrupt or the timeout. */
    private void await(long start, Duration timeout) {
        long deadline = start + timeout.toNanos();
        int[] async = new int[1];
        for (long polls = 0; ; polls++) {
            int q = cudaStreamQuery(stream);
            if (q == cudaSuccess) {
                return;
            }
            if (q != cudaErrorNotReady) {
                abort("CUDA reported " + NcclNative.cudaError(q));
                throw new NcclFailure(false, abortedBecause);
            }
            if ((polls & 63) == 63) {
                int r = ncclCommGetAsyncError(comm, async);
                if (r != ncclSuccess || async[0] != ncclSuccess) {
                    abort("NCCL reported " + NcclNative.ncclError(r != ncclSuccess ? r : async[0]));
                    throw new NcclFailure(false, abortedBecause);
                }
            }
            if (System.nanoTime() - deadline > 0) {
                abort("timeout after " + timeout.toMillis() + " ms");
                throw new NcclFailure(true, "NCCL did not finish within " + timeout.toMillis() + " ms (timeout)");
            }
            if (Thread.currentThread().isInterrupted()) {
                abort("interrupted");
                throw new NcclFailure(false, "the thread was interrupted while NCCL was running");
            }
            if (polls < 2_000) {
                Thread.onSpinWait();
            } else {
                LockSupport.parkNanos(polls < 20_000 ? 20_000 : 500_000);
            }
        }
    }

    private void abort(String why) {
        if (abortedBecause == null) {
            abortedBecause = why;
            ncclCommAbort(comm);
        }
    }

    private Pointer offset(long bytes) {
        return bytes == 0 ? buffer : new DevicePointer(buffer.address() + bytes);
    }

    /** A device address; no deallocator (the staging buffer owns the memory). */
    private static final class DevicePointer extends Pointer {
        DevicePointer(long address) {
            this.address = address;
        }
    }
}
