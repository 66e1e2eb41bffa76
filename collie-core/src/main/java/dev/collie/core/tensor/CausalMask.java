package dev.collie.core.tensor;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Which keys an attention query sees: in a block of {@code t} queries whose first is key {@code past = tk − t}, query
 * {@code i} sees keys {@code j ≤ past + i}, and with a sliding {@code window} (0: none) only the last {@code window}
 * of them. Hidden scores get {@link #MASKED} added before the softmax, which makes their probability exactly 0.
 */
public final class CausalMask {
    /** What a hidden score gets added: exp(−1e9 − max) is 0 in float32 and float64. */
    public static final double MASKED = -1e9;
    /** Masks by (t, tk, window, type): the same for every unpadded batch of a length; a few lengths at a time. */
    private static final Map<List<Object>, INDArray> MASKS = new ConcurrentHashMap<>();
    private static final int CACHED = 16;

    private CausalMask() {
    }

    /** Whether query {@code i} (of a block whose first query is key {@code past}) cannot see key {@code j}. */
    public static boolean hidden(int i, int j, int past, int window) {
        return j > past + i || (window > 0 && j <= past + i - window);
    }

    /** The first key query {@code i} sees. */
    static int firstVisible(int i, int past, int window) {
        return window > 0 ? Math.max(0, past + i - window + 1) : 0;
    }

    /**
     * Adds the mask to scores whose last two dimensions are {@code [t, tk]} (any leading dimensions, C order without
     * gaps), in place; nothing to add for one query at the end of the keys without a window (a decoding step).
     */
    static void addTo(INDArray scores, int t, int window) {
        int tk = (int) scores.size(scores.rank() - 1);
        if (t == 1 && window == 0) {
            return;
        }
        DataType dt = scores.dataType();
        List<Object> key = List.of(t, tk, window, dt);
        INDArray mask = MASKS.get(key);
        if (mask == null) {
            if (MASKS.size() >= CACHED) {
                MASKS.clear();
            }
            mask = MASKS.computeIfAbsent(key, k -> build(t, tk, window, dt));
        }
        INDArray blocks = scores.reshape('c', scores.length() / ((long) t * tk), t, tk);
        Nd4j.exec(new BroadcastAddOp(blocks, mask, blocks, 1, 2));
    }

    private static INDArray build(int t, int tk, int window, DataType dt) {
        int past = tk - t;
        double[] m = new double[t * tk];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < tk; j++) {
                if (hidden(i, j, past, window)) {
                    m[i * tk + j] = MASKED;
                }
            }
        }
        try (var ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            return Nd4j.create(m, new long[] {t, tk}, 'c').castTo(dt);
        }
    }
}
