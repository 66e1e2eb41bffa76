package dev.collie.core.train;

import dev.collie.core.CollieException;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Process memory as the kernel counts it (ND4J's off-heap arrays included; Linux only, 0 elsewhere), and the
 * {@link #limit()} that sizes are checked against before anything is allocated: ND4J's CPU backend does not check
 * that a native allocation succeeded (a failed one crashes the JVM), so a size that cannot fit must be refused first.
 */
public final class Memory {
    private static final String[] JAVACPP_LIMITS = {"org.bytedeco.javacpp.maxPhysicalBytes",
        "org.bytedeco.javacpp.maxBytes"};

    private Memory() {
    }

    /**
     * The most memory this process can get: {@code bytes}, and why, in words ({@code "this machine has 15.6 GB"}).
     *
     * @param bytes the limit
     * @param source what sets it, as the end of a sentence
     */
    public record Limit(long bytes, String source) {
        /**
         * Refuses {@code bytes} above the limit: the message is {@code need} (with {@code %s} for the size, as in
         * {@code "the model needs %s of parameters"}), then the limit.
         */
        public void require(long bytes, String need) {
            require(bytes, need, "");
        }

        /** As {@link #require(long, String)}, ending with {@code ": " + remedy} (none when empty). */
        public void require(long bytes, String need, String remedy) {
            if (bytes > this.bytes) {
                throw new CollieException(String.format(Locale.ROOT, need, format(bytes)) + "; " + source
                        + (remedy.isEmpty() ? "" : ": " + remedy));
            }
        }
    }

    /**
     * The least of: the machine's physical memory (the container's limit, where there is one), the cap set with
     * {@code -Dorg.bytedeco.javacpp.maxPhysicalBytes} or {@code maxBytes} (only when set: ND4J's CPU arrays do not
     * count against JavaCPP's default), and the address space {@code ulimit -v} leaves this process.
     */
    public static Limit limit() {
        long physical = ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getTotalMemorySize();
        Limit l = new Limit(physical > 0 ? physical : Long.MAX_VALUE, "this machine has " + format(physical));
        for (String p : JAVACPP_LIMITS) {
            if (System.getProperty(p) != null || System.getProperty(p.toLowerCase(Locale.ROOT)) != null) {
                long cap = p.endsWith("maxBytes") ? Pointer.maxBytes() : Pointer.maxPhysicalBytes();
                if (cap > 0 && cap < l.bytes()) {
                    l = new Limit(cap, "-D" + p + " allows " + format(cap));
                }
            }
        }
        long as = limitField("Max address space");
        if (as > 0) {
            long left = Math.max(0, as - statusField("VmSize:"));
            if (left < l.bytes()) {
                l = new Limit(left, "ulimit -v leaves this process " + format(left) + " of address space");
            }
        }
        return l;
    }

    /**
     * On ND4J's CPU backend, sets its memory limit (device 0, the host) to {@link #limit()} less a reserve (a quarter,
     * at most 2 GB) for what it does not count (workspaces, malloc arenas, the JVM's own growth): an array allocated
     * beyond it then fails with ND4J's "Allocation failed" exception, where a failed native allocation would crash
     * the JVM. Best effort under {@code ulimit -v}, where what ND4J does not count may still take the rest. Call once
     * ND4J has started; returns the limit set, 0 on another backend (left alone).
     */
    public static long limitNd4jAllocations() {
        if (!Nd4j.getEnvironment().isCPU()) {
            return 0;
        }
        long all = limit().bytes();
        long bytes = Math.max(1, all - Math.min(all / 4, 2_000_000_000L));
        Nd4j.getEnvironment().setDeviceLimit(0, bytes);
        return bytes;
    }

    /** {@code bytes} for people: {@code 950 B}, {@code 97.6 MB}, {@code 17.2 GB}, {@code 1.9 TB} (powers of 1000). */
    public static String format(long bytes) {
        String[] units = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
        double v = bytes;
        int u = 0;
        while (v >= 999.95 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        return u == 0 ? bytes + " B" : String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    /** {@code a · b}, or {@link Long#MAX_VALUE} where that overflows: for estimates compared with a limit. */
    public static long times(long a, long b) {
        long hi = Math.multiplyHigh(a, b);
        long lo = a * b;
        return (hi == 0 && lo >= 0) ? lo : Long.MAX_VALUE;
    }

    /** {@code a + b}, or {@link Long#MAX_VALUE} where that overflows. */
    public static long plus(long a, long b) {
        long s = a + b;
        return ((a ^ s) & (b ^ s)) < 0 ? Long.MAX_VALUE : s;
    }

    /** Current resident set size in bytes. */
    public static long residentBytes() {
        return statusField("VmRSS:");
    }

    /**
     * Bytes ND4J's arrays hold outside the Java heap, as its allocator counts them for device 0 (the host on the CPU
     * backend, where {@link #limitNd4jAllocations()} caps the same count; the GPU's memory on CUDA).
     */
    public static long offHeapBytes() {
        return Nd4j.getEnvironment().getDeviceCouner(0);
    }

    /** Peak resident set size in bytes since the process started. */
    public static long peakResidentBytes() {
        return statusField("VmHWM:");
    }

    /** The soft limit of {@code /proc/self/limits} line {@code name} in bytes; 0 when unlimited or unknown. */
    private static long limitField(String name) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/limits"))) {
                if (line.startsWith(name)) {
                    String soft = line.substring(name.length()).trim().split("\\s+")[0];
                    return soft.equals("unlimited") ? 0 : Long.parseLong(soft);
                }
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        return 0;
    }

    private static long statusField(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(key)) {
                    return Long.parseLong(line.substring(key.length()).trim().split("\\s+")[0]) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        return 0;
    }
}
