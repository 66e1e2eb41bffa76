package dev.collie.parallel.dp;

import dev.collie.core.nn.Parameter;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.Map;

/**
 * How a data-parallel sync checks at construction that every rank holds the same trainable parameters: each
 * rank all-gathers a digest of their names, shapes and types, and compares.
 */
final class ParameterDigest {
    private ParameterDigest() {
    }

    /** The digest of {@code named} (name and parameter, in order): their count, then two longs of a SHA-256. */
    static long[] of(Iterable<? extends Map.Entry<String, Parameter>> named) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            long count = 0;
            for (Map.Entry<String, Parameter> e : named) {
                Parameter p = e.getValue();
                md.update((e.getKey() + ":" + Arrays.toString(p.shape()) + ":" + p.dtype() + ";")
                        .getBytes(StandardCharsets.UTF_8));
                count++;
            }
            byte[] h = md.digest();
            return new long[] {count, ByteBuffer.wrap(h).getLong(0), ByteBuffer.wrap(h).getLong(8)};
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * The ranks among {@code n} whose digest in {@code every} (all ranks', in rank order) differs from {@code mine},
     * as "rank 1 (12 parameters), rank 3 (12 parameters)"; empty when all match.
     */
    static String differing(long[] mine, long[] every, int n) {
        StringBuilder bad = new StringBuilder();
        for (int r = 0; r < n; r++) {
            if (every[r * 3] != mine[0] || every[r * 3 + 1] != mine[1] || every[r * 3 + 2] != mine[2]) {
                bad.append(bad.length() == 0 ? "" : ", ").append("rank ").append(r).append(" (")
                        .append(every[r * 3]).append(" parameters)");
            }
        }
        return bad.toString();
    }
}
