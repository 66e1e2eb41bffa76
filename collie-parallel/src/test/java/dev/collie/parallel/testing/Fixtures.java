package dev.collie.parallel.testing;

import dev.collie.core.data.Batch;
import dev.collie.core.data.Dataset;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.Sample;
import dev.collie.core.nn.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Test helper: the data the parallel tests train on, and copies of what they compare. */
public final class Fixtures {
    private Fixtures() {
    }

    /** {@code count} causal samples of {@code len} ids drawn uniformly from {@code [0, vocab)} with {@code seed}. */
    public static Dataset causalRows(int count, int len, int vocab, long seed) {
        Random r = new Random(seed);
        List<Sample> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int[] ids = new int[len];
            for (int j = 0; j < len; j++) {
                ids[j] = r.nextInt(vocab);
            }
            out.add(Sample.causal(ids));
        }
        return Datasets.of(out);
    }

    /**
     * {@code m} micro-batches of {@code rows × seq} ids in {@code [1, idBound]}, labels the ids; with {@code padded},
     * micro-batch 0's row 1 is right-padded (its last 3 positions) and micro-batch 1's left-padded (its first 2).
     */
    public static List<Batch> microBatches(int m, int rows, int seq, int idBound, boolean padded, long seed) {
        Random r = new Random(seed);
        List<Batch> out = new ArrayList<>();
        for (int i = 0; i < m; i++) {
            long[][] ids = new long[rows][seq];
            long[][] labels = new long[rows][seq];
            long[][] mask = new long[rows][seq];
            for (int row = 0; row < rows; row++) {
                for (int t = 0; t < seq; t++) {
                    boolean pad = padded && row == 1 && (i == 0 ? t >= seq - 3 : i == 1 && t < 2);
                    ids[row][t] = pad ? 0 : 1 + r.nextInt(idBound);
                    labels[row][t] = pad ? -100 : ids[row][t];
                    mask[row][t] = pad ? 0 : 1;
                }
            }
            out.add(new Batch(Nd4j.createFromArray(ids), Nd4j.createFromArray(labels), Nd4j.createFromArray(mask)));
        }
        return out;
    }

    /** Copies of the parameters' values, or with {@code grads} of their gradients, by name in order. */
    public static Map<String, INDArray> copies(Map<String, Parameter> ps, boolean grads) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        ps.forEach((n, p) -> out.put(n, (grads ? p.grad() : p.data()).dup()));
        return out;
    }

    /** Copies of {@code arrays} (e.g. the weights a rank gathered before its model is closed); null for null. */
    public static Map<String, INDArray> copies(Map<String, INDArray> arrays) {
        if (arrays == null) {
            return null;
        }
        Map<String, INDArray> out = new HashMap<>();
        arrays.forEach((n, a) -> out.put(n, a.dup()));
        return out;
    }
}
