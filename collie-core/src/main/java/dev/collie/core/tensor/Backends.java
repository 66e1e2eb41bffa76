package dev.collie.core.tensor;

import dev.collie.core.CollieException;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.factory.Nd4jBackend;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * ND4J start-up settings that decide speed on CPUs (measured in docs/design-notes.md). Call
 * {@link #configure(int)} first thing in a main, before any ND4J class loads.
 */
public final class Backends {
    private static final String EXTENSION = "org.bytedeco.javacpp.platform.extension";
    private static final String ONEDNN_AVX512 = "-onednn-avx512";

    private Backends() {
    }

    /**
     * Picks ND4J's oneDNN AVX-512 native build where the CPU has AVX-512 and that build is on the class
     * path (else the generic build), turns off JavaCPP's per-allocation RSS check (arrays are freed
     * by workspaces and close()), quiets the native libraries' start-up messages ({@link NativeStartupMessages}),
     * sets ND4J's op threads to {@code threads} and warns once when the JVM lacks the Vector API module that the
     * fused element-wise kernels need.
     */
    public static void configure(int threads) {
        NativeStartupMessages.quiet();
        if (System.getProperty(EXTENSION) == null && cpuHasAvx512() && onClassPath(ONEDNN_AVX512)) {
            System.setProperty(EXTENSION, ONEDNN_AVX512);
        }
        if (System.getProperty("org.bytedeco.javacpp.maxPhysicalBytes") == null) {
            System.setProperty("org.bytedeco.javacpp.maxPhysicalBytes", "0");
        }
        try {
            setOpThreads(threads);
        } catch (ExceptionInInitializerError | NoClassDefFoundError | RuntimeException e) {
            throw noBackend(e);
        }
        if (VectorSupport.UNAVAILABLE != null && !VectorSupport.UNAVAILABLE.startsWith("switched off")) {
            org.slf4j.LoggerFactory.getLogger(Backends.class).warn("collie's fused element-wise kernels are off ({});"
                    + " start the JVM with --add-modules jdk.incubator.vector for them (README, Maven coordinates)",
                    VectorSupport.UNAVAILABLE);
        }
    }

    /** ND4J found no backend it could load: say which runtime artifact gives one, and why a CUDA one may not. */
    static RuntimeException noBackend(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof Nd4jBackend.NoAvailableBackendException) {
                return new CollieException("no ND4J backend could start: add dev.collie:collie-cpu to the class path "
                        + "(the CPU runtime); collie-cuda needs an NVIDIA driver (libcuda.so.1) and a GPU ND4J's CUDA "
                        + "11.6 build has kernels for (sm_37..sm_86). ND4J said: " + t.getMessage(), e);
            }
        }
        return e instanceof RuntimeException r ? r : new IllegalStateException("ND4J failed to start: " + e, e);
    }

    private static volatile int opThreads = Runtime.getRuntime().availableProcessors();

    /** Threads each ND4J op (and BLAS call) may use; 1 when several worker threads run ops side by side. */
    public static synchronized void setOpThreads(int threads) {
        Nd4j.getEnvironment().setMaxMasterThreads(threads);
        Nd4j.factory().blas().setMaxThreads(threads);
        opThreads = threads;
    }

    /**
     * Sets the op threads unless they already are {@code threads}: the check and the change are one
     * atomic step, so ranks or workers running side by side that want the same setting change it once
     * (resizing the OpenMP/BLAS pools while another thread runs an op crashes the process).
     */
    public static synchronized void ensureOpThreads(int threads) {
        if (opThreads != threads) {
            setOpThreads(threads);
        }
    }

    /** The op threads last set. */
    public static int opThreads() {
        return opThreads;
    }

    /** How many threads may run ops side by side without oversubscribing the cores. */
    public static int parallelStreams() {
        return Math.max(1, Runtime.getRuntime().availableProcessors() / Math.max(1, opThreads));
    }

    private static volatile MatmulPrecision matmulPrecision = MatmulPrecision.FP32;

    /**
     * How fp32 matrix products are computed from now on, in every thread. {@link MatmulPrecision#BF16}
     * needs oneDNN 3.3 ({@code org.bytedeco:dnnl} with its linux-x86_64 natives) on the class path and fails
     * here, naming why, when it cannot load.
     */
    public static void setMatmulPrecision(MatmulPrecision precision) {
        if (precision == MatmulPrecision.BF16 && !dnnlAvailable()) {
            throw new IllegalStateException("bf16 matmuls need oneDNN 3.3 (org.bytedeco:dnnl 3.3.4-1.5.10 and its"
                    + " linux-x86_64 natives) on the class path: " + dnnlUnavailableReason());
        }
        matmulPrecision = Objects.requireNonNull(precision, "precision");
    }

    /** Why oneDNN 3.3 is not used here (switched off, or why it did not load); null when it is. */
    static String dnnlUnavailableReason() {
        if (dnnlAvailable()) {
            return null;
        }
        String why = DnnlLoad.SWITCHED_OFF;
        try {
            return why != null ? why : Dnnl.unavailableReason();
        } catch (LinkageError e) {
            return e.toString();
        }
    }

    /**
     * The matmul precision in use: FP32 unless set (a library's default, and what the parity tests run; the CLI's
     * {@code --matmul-precision auto} sets what {@link MatmulProbe} measured).
     */
    public static MatmulPrecision matmulPrecision() {
        return matmulPrecision;
    }

    /** The switch that keeps oneDNN 3.3 unused (ND4J's own kernels everywhere, no bf16): a property or the environment. */
    public static final String ONEDNN3_SWITCH = "collie.onednn3";
    static final String ONEDNN3_ENV = "COLLIE_ONEDNN3";

    private static final class DnnlLoad {
        static final String SWITCHED_OFF = switchedOff();
        static final boolean AVAILABLE = SWITCHED_OFF == null && loads();

        private static boolean loads() {
            try {
                return Dnnl.unavailableReason() == null;
            } catch (LinkageError e) {
                return false;
            }
        }

        private static String switchedOff() {
            String p = System.getProperty(ONEDNN3_SWITCH);
            if ("off".equalsIgnoreCase(p)) {
                return "switched off by -D" + ONEDNN3_SWITCH + "=off";
            }
            String e = System.getenv(ONEDNN3_ENV);
            return p == null && "off".equalsIgnoreCase(e) ? "switched off by " + ONEDNN3_ENV + "=off" : null;
        }
    }

    /**
     * Whether oneDNN 3.3 ({@code org.bytedeco:dnnl}) loaded here and is not switched off
     * ({@code -Dcollie.onednn3=off} or {@code COLLIE_ONEDNN3=off}, read once).
     */
    static boolean dnnlAvailable() {
        return DnnlLoad.AVAILABLE;
    }

    private static final class KernelsChoice {
        // the products are logged for ProductLog on the way (one field read each when no log is open)
        static final Kernels KERNELS = new ProductLog.Logging(new SmallArrayKernels(VectorSupport.wrap(dnnlAvailable()
                ? DnnlKernels.INSTANCE : Nd4jKernels.INSTANCE)));
    }

    private static volatile Kernels kernelsOverride;

    /** The {@link Kernels} of this process, chosen once (while {@link KernelTimes} records, its timing proxy). */
    static Kernels kernels() {
        Kernels o = kernelsOverride;
        return o != null ? o : KernelsChoice.KERNELS;
    }

    static void setKernelsOverride(Kernels k) {
        kernelsOverride = k;
    }

    /**
     * What computes the element-wise kernels (norms, activations, softmax, loss, optimizer updates): "Vector API
     * 512-bit" where the fused kernels run, else which reason keeps them off (start the JVM with
     * {@code --add-modules jdk.incubator.vector}).
     */
    public static String elementwiseEngine() {
        return VectorSupport.describe();
    }

    /**
     * The options a JVM this process starts (a rank, a worker) needs to compute as this one does: {@code --add-modules
     * jdk.incubator.vector} where this JVM has the Vector API module (the fused kernels round differently from ND4J's,
     * so ranks on other kernels would not give this process's bits), else none.
     */
    public static List<String> childJvmOptions() {
        return ModuleLayer.boot().findModule(VectorSupport.MODULE).isPresent()
                ? List.of("--add-modules", VectorSupport.MODULE) : List.of();
    }

    /** What computes bf16 matmuls here, e.g. "oneDNN 3.3 avx512_core_amx"; null when none can. */
    public static String bf16MatmulEngine() {
        return dnnlAvailable() ? "oneDNN 3.3 " + Dnnl.isa() : null;
    }

    /** Which native build was chosen: "onednn-avx512" or "generic". */
    public static String nativeVariant() {
        return ONEDNN_AVX512.equals(System.getProperty(EXTENSION)) ? "onednn-avx512" : "generic";
    }

    static boolean cpuHasAvx512() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("flags")) {
                    return line.contains(" avx512f");
                }
            }
        } catch (IOException | RuntimeException e) {
            return false;
        }
        return false;
    }

    private static boolean onClassPath(String extension) {
        String resource = "org/nd4j/linalg/cpu/nativecpu/bindings/linux-x86_64" + extension + "/libjnind4jcpu.so";
        return Backends.class.getClassLoader().getResource(resource) != null;
    }
}
