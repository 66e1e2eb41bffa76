package dev.collie.core.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Process memory as the kernel counts it (ND4J's off-heap arrays included). Linux only; 0 elsewhere. */
public final class Memory {
    private Memory() {
    }

    /** Current resident set size in bytes. */
    public static long residentBytes() {
        return statusField("VmRSS:");
    }

    /** Peak resident set size in bytes since the process started. */
    public static long peakResidentBytes() {
        return statusField("VmHWM:");
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
