package dev.collie.core.tensor;

/**
 * Whether the fused element-wise kernels of {@link VectorKernels} run here. They need the JVM's Vector API module,
 * which an application adds at start ({@code java --add-modules jdk.incubator.vector ...}; the {@code collie} launcher
 * and the build's tests do); {@code -Dcollie.vector=off} or {@code COLLIE_VECTOR=off} keeps them unused. Without
 * them every kernel runs as before (ND4J's and oneDNN's ops), only slower.
 */
final class VectorSupport {
    static final String SWITCH = "collie.vector";
    static final String MODULE = "jdk.incubator.vector";
    /** Why the kernels are not used, or null when they are; decided once. */
    static final String UNAVAILABLE = unavailable();

    private VectorSupport() {
    }

    private static String unavailable() {
        String p = System.getProperty(SWITCH);
        if ("off".equalsIgnoreCase(p)) {
            return "switched off by -D" + SWITCH + "=off";
        }
        if (p == null && "off".equalsIgnoreCase(System.getenv("COLLIE_VECTOR"))) {
            return "switched off by COLLIE_VECTOR=off";
        }
        if (ModuleLayer.boot().findModule(MODULE).isEmpty()) {
            return "the JVM was started without --add-modules " + MODULE;
        }
        try {
            VectorKernels.width();   // links the Vector API classes
            return null;
        } catch (LinkageError | RuntimeException e) {
            return "the Vector API did not load: " + e;
        }
    }

    /** {@code kernels} wrapped in the Vector API kernels where they run, else {@code kernels} itself. */
    static Kernels wrap(Kernels kernels) {
        return UNAVAILABLE == null ? new VectorKernels(kernels) : kernels;
    }

    /** For a run's header: "Vector API 512-bit", or why not. */
    static String describe() {
        return UNAVAILABLE == null ? "Vector API " + VectorKernels.width()
                : "ND4J (fused Vector API kernels off: " + UNAVAILABLE + ")";
    }
}
