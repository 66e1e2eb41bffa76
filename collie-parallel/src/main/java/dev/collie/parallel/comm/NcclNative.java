package dev.collie.parallel.comm;

import static org.bytedeco.cuda.global.cudart.cudaGetDeviceCount;
import static org.bytedeco.cuda.global.cudart.cudaGetErrorString;
import static org.bytedeco.cuda.global.cudart.cudaRuntimeGetVersion;
import static org.bytedeco.cuda.global.cudart.cudaSetDevice;
import static org.bytedeco.cuda.global.cudart.cudaSuccess;
import static org.bytedeco.cuda.global.nccl.NCCL_UNIQUE_ID_BYTES;
import static org.bytedeco.cuda.global.nccl.ncclGetErrorString;
import static org.bytedeco.cuda.global.nccl.ncclGetUniqueId;
import static org.bytedeco.cuda.global.nccl.ncclGetVersion;
import static org.bytedeco.cuda.global.nccl.ncclSuccess;

import org.bytedeco.cuda.global.cudart;
import org.bytedeco.cuda.global.nccl;
import org.bytedeco.cuda.nccl.ncclUniqueId;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;

/**
 * Process-wide CUDA/NCCL calls of the nccl backend: loading the natives, counting GPUs, making unique ids.
 *
 * <p>Only {@link NcclCommunicator} touches this class, and only after it has checked that the JavaCPP CUDA
 * classes are on the class path: the presets are an optional dependency, and a JVM without them must never
 * link this class.
 */
final class NcclNative {
    private NcclNative() { }

    /** Loads cudart and NCCL and counts GPUs; returns why the backend cannot run, or {@code null} if it can. */
    static String probe() {
        try {
            Loader.load(cudart.class);
        } catch (Throwable t) {
            String why = linkError(t);
            if (why.contains("libcuda.so")) {
                return "no NVIDIA driver here: the CUDA runtime natives could not be loaded (" + why + ")";
            }
            return "the CUDA runtime natives could not be loaded (" + why + "); put the JavaCPP CUDA presets' "
                    + "native jars org.bytedeco:cuda:11.6-8.3-1.5.7:linux-x86_64 and :linux-x86_64-redist on the class "
                    + "path (or install CUDA 11.x and NCCL 2 where the JVM finds them)";
        }
        int[] count = new int[1];
        int err = cudaGetDeviceCount(count);
        if (err != cudaSuccess) {
            return "no usable GPU: cudaGetDeviceCount failed with " + cudaError(err)
                    + " (no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides every GPU)";
        }
        if (count[0] < 1) {
            return "no GPU is visible (cudaGetDeviceCount returned 0)";
        }
        try {
            Loader.load(nccl.class);
        } catch (Throwable t) {
            return "the NCCL natives could not be loaded (" + linkError(t) + "); put org.bytedeco:cuda:11.6-8.3-1.5.7:"
                    + "linux-x86_64-redist (it bundles NCCL 2.11) on the class path, or install libnccl.so.2";
        }
        int[] version = new int[1];
        int r = ncclGetVersion(version);
        if (r != ncclSuccess) {
            return "ncclGetVersion failed with " + ncclError(r);
        }
        return null;
    }

    /** Number of visible GPUs; call only after {@link #probe()} returned {@code null}. */
    static int deviceCount() {
        int[] count = new int[1];
        return cudaGetDeviceCount(count) == cudaSuccess ? count[0] : 0;
    }

    /** "NCCL 2.11.4, CUDA runtime 11060" — for logs. */
    static String versions() {
        int[] v = new int[1];
        int[] rt = new int[1];
        ncclGetVersion(v);
        cudaRuntimeGetVersion(rt);
        int code = v[0];
        // NCCL_VERSION_CODE is major*1000+minor*100+patch before 2.9, major*10000+minor*100+patch since
        String nccl = code >= 10000
                ? code / 10000 + "." + code / 100 % 100 + "." + code % 100
                : code / 1000 + "." + code / 100 % 10 + "." + code % 100;
        return "NCCL " + nccl + ", CUDA runtime " + rt[0];
    }

    /** A fresh NCCL unique id (the rendezvous token that rank 0 hands to the others), as its raw bytes. */
    static byte[] uniqueId(int device) {
        check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
        ncclUniqueId id = new ncclUniqueId();
        try {
            int r = ncclGetUniqueId(id);
            if (r != ncclSuccess) {
                throw new NcclFailure(false, "ncclGetUniqueId failed with " + ncclError(r));
            }
            byte[] bytes = new byte[NCCL_UNIQUE_ID_BYTES];
            for (int i = 0; i < bytes.length; i++) {
                bytes[i] = id.internal(i);
            }
            return bytes;
        } finally {
            id.close();
        }
    }

    static int uniqueIdBytes() {
        return NCCL_UNIQUE_ID_BYTES;
    }

    static void check(int cudaResult, String call) {
        if (cudaResult != cudaSuccess) {
            throw new NcclFailure(false, call + " failed with " + cudaError(cudaResult));
        }
    }

    static String cudaError(int code) {
        BytePointer s = cudaGetErrorString(code);
        return "CUDA error " + code + (s == null || s.isNull() ? "" : " (" + s.getString() + ")");
    }

    static String ncclError(int code) {
        BytePointer s = ncclGetErrorString(code);
        return "NCCL error " + code + (s == null || s.isNull() ? "" : " (" + s.getString() + ")");
    }

    /**
     * The most telling part of a native-loading failure: JavaCPP throws "no jniX in java.library.path" with the
     * real reason (a missing dependency such as libcuda.so.1) as its cause.
     */
    static String linkError(Throwable t) {
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String m = root.getMessage() == null ? root.toString() : root.getMessage();
        m = m.replaceAll("(java\\.library\\.path):.*", "$1")
                .replaceAll("(?:/[^/\\s:]+)+/(lib[^/\\s:]+)", "$1");
        return oneLine(new RuntimeException(m)).replaceFirst("^RuntimeException: ", "");
    }

    static String oneLine(Throwable t) {
        String m = t.getClass().getSimpleName() + ": " + t.getMessage();
        m = m.replaceAll("\\s+", " ").trim();
        return m.length() > 300 ? m.substring(0, 300) + "…" : m;
    }
}
