package dev.collie.parallel.pp;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.LayerWrapper;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Where a model's pipeline layers ({@link dev.collie.core.train.LanguageModel#pipelineLayers()}) are cut into
 * stages, by CoLLiE's three methods ({@code pp_partition_method}):
 * <ul>
 *   <li>{@code parameters}: balance the parameter elements (each distinct parameter of a layer counted once,
 *       frozen ones included: they take memory and compute too) — the contiguous cut that minimises the
 *       heaviest stage; among those, the one with the smallest sum of squared stage weights, then the one
 *       whose layer counts are most even, then the earliest cuts;</li>
 *   <li>{@code uniform}: balance the number of layers; the first {@code n mod stages} stages get one more;</li>
 *   <li>{@code type:REGEX}: balance the layers whose class simple name (below any wrapper) contains a match of
 *       REGEX, case-insensitively ({@code type:DecoderLayer}, {@code type:decoder}), as {@code uniform}
 *       balances all layers; a stage starts at its first matching layer, so the layers before the first
 *       match (the embedding) stay on the first stage, those after the last (final norm, head) on the last,
 *       and any in between go with the stage before them.</li>
 * </ul>
 * Stage {@code s} gets layers {@code [bounds[s], bounds[s+1])}; every stage gets at least one layer.
 */
public final class PipelinePartition {
    private PipelinePartition() {
    }

    /**
     * The stage bounds ({@code stages + 1} indices, first 0, last {@code layers.size()}).
     *
     * @throws CollieException for an unknown method, a bad regex, or more stages than layers (or matching layers)
     */
    public static int[] bounds(List<Layer> layers, int stages, String method) {
        if (stages < 1) {
            throw new CollieException("pipeline stages must be at least 1, got " + stages);
        }
        if (method == null) {
            throw new CollieException("no pipeline partition method; use parameters, uniform or type:REGEX");
        }
        int n = layers.size();
        String m = method.trim();
        String lower = m.toLowerCase(Locale.ROOT);
        if (lower.equals("parameters")) {
            requireLayers(n, stages, method);
            long[] w = new long[n];
            for (int i = 0; i < n; i++) {
                w[i] = parameterCount(layers.get(i));
            }
            return balanced(w, stages);
        }
        if (lower.equals("uniform")) {
            requireLayers(n, stages, method);
            return uniform(n, stages);
        }
        if (lower.startsWith("type:")) {
            return byType(layers, stages, m.substring("type:".length()), method);
        }
        throw new CollieException("unknown pipeline partition method '" + method
                + "'; use parameters, uniform or type:REGEX (e.g. type:DecoderLayer)");
    }

    /** The parameter elements of one layer: each distinct parameter once, below any wrapper. */
    public static long parameterCount(Layer layer) {
        Layer inner = LayerWrapper.unwrap(layer);
        long count = 0;
        if (inner instanceof Module m) {
            for (Parameter p : m.parameters()) {
                count += p.numel();
            }
        }
        return count;
    }

    private static void requireLayers(int n, int stages, String method) {
        if (stages > n) {
            throw new CollieException("cannot cut " + n + " pipeline layers into " + stages + " stages (method "
                    + method + "): every stage needs at least one layer");
        }
    }

    /** {@code n} items into {@code parts}: the first {@code n mod parts} parts get one more. */
    static int[] uniform(int n, int parts) {
        int[] b = new int[parts + 1];
        int chunk = n / parts;
        int extra = n % parts;
        for (int s = 0; s <= parts; s++) {
            b[s] = s * chunk + Math.min(s, extra);
        }
        return b;
    }

    private static int[] byType(List<Layer> layers, int stages, String regex, String method) {
        if (regex.isEmpty()) {
            throw new CollieException("pipeline partition method '" + method + "' names no layer type; write e.g."
                    + " type:DecoderLayer");
        }
        Pattern p;
        try {
            p = Pattern.compile(regex, Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE);
        } catch (PatternSyntaxException e) {
            throw new CollieException("pipeline partition method '" + method + "': '" + regex
                    + "' is not a valid regular expression: " + e.getDescription(), e);
        }
        List<Integer> matching = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            if (p.matcher(LayerWrapper.unwrap(layers.get(i)).getClass().getSimpleName()).find()) {
                matching.add(i);
            }
        }
        if (stages > matching.size()) {
            throw new CollieException("cannot cut the pipeline into " + stages + " stages by type '" + regex
                    + "': only " + matching.size() + " of the " + layers.size() + " layers match ("
                    + layerTypes(layers) + ")");
        }
        int[] perStage = uniform(matching.size(), stages);
        int[] b = new int[stages + 1];
        for (int s = 1; s < stages; s++) {
            b[s] = matching.get(perStage[s]);
        }
        b[stages] = layers.size();
        return b;
    }

    private static String layerTypes(List<Layer> layers) {
        List<String> names = new ArrayList<>();
        for (Layer l : layers) {
            String n = LayerWrapper.unwrap(l).getClass().getSimpleName();
            if (!names.contains(n)) {
                names.add(n);
            }
        }
        return "layer types " + String.join(", ", names);
    }

    /**
     * The contiguous cut of {@code w} into {@code parts} non-empty parts that minimises the heaviest part;
     * ties broken by the smaller sum of squared part weights, then the smaller sum of squared part sizes,
     * then the earlier cuts.
     */
    static int[] balanced(long[] w, int parts) {
        int n = w.length;
        long[] prefix = new long[n + 1];
        for (int i = 0; i < n; i++) {
            prefix[i + 1] = prefix[i] + w[i];
        }
        long bottleneck = minBottleneck(prefix, parts);
        // cost[j][i]: best (Σ weight², Σ size²) of layers [0, i) in j parts, none heavier than the bottleneck
        double[][] sq = new double[parts + 1][n + 1];
        long[][] sizes = new long[parts + 1][n + 1];
        int[][] from = new int[parts + 1][n + 1];
        for (double[] row : sq) {
            Arrays.fill(row, Double.POSITIVE_INFINITY);
        }
        sq[0][0] = 0;
        for (int j = 1; j <= parts; j++) {
            for (int i = j; i <= n - (parts - j); i++) {
                for (int k = j - 1; k < i; k++) {       // last part [k, i); increasing k: earlier cuts win ties
                    long part = prefix[i] - prefix[k];
                    if (part > bottleneck || sq[j - 1][k] == Double.POSITIVE_INFINITY) {
                        continue;
                    }
                    double s = sq[j - 1][k] + (double) part * part;
                    long z = sizes[j - 1][k] + (long) (i - k) * (i - k);
                    if (s < sq[j][i] || (s == sq[j][i] && z < sizes[j][i])) {
                        sq[j][i] = s;
                        sizes[j][i] = z;
                        from[j][i] = k;
                    }
                }
            }
        }
        int[] b = new int[parts + 1];
        b[parts] = n;
        for (int j = parts; j > 0; j--) {
            b[j - 1] = from[j][b[j]];
        }
        return b;
    }

    /** The least possible weight of the heaviest part (binary search over a greedy feasibility check). */
    private static long minBottleneck(long[] prefix, int parts) {
        int n = prefix.length - 1;
        long lo = 0;
        for (int i = 0; i < n; i++) {
            lo = Math.max(lo, prefix[i + 1] - prefix[i]);
        }
        long hi = prefix[n];
        while (lo < hi) {
            long mid = lo + (hi - lo) / 2;
            if (fits(prefix, parts, mid)) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        return lo;
    }

    /** Whether {@code parts} non-empty parts, none heavier than {@code cap}, can hold everything. */
    private static boolean fits(long[] prefix, int parts, long cap) {
        int n = prefix.length - 1;
        int used = 0;
        int i = 0;
        while (i < n) {
            int j = i + 1;
            while (j < n && prefix[j + 1] - prefix[i] <= cap) {
                j++;
            }
            used++;
            i = j;
        }
        // fewer greedy parts can always be split further (every layer alone fits the cap) into exactly `parts`
        return used <= parts;
    }
}
