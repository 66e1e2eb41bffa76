package dev.collie.parallel.dp;

import dev.collie.core.nn.Parameter;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which data-parallel rank owns (updates, keeps the optimizer state of, and under ZeRO-2/3 keeps the gradient
 * and value of) each trainable parameter. Whole parameters, not slices of them, so each rank's optimizer
 * works on ordinary {@link Parameter}s. The result is a function of the parameters' order and sizes only,
 * so every rank computes the same assignment without communicating.
 */
final class Owners {
    private Owners() {
    }

    /**
     * Greedy balance of element counts over {@code ranks}: largest parameter first onto the least-loaded rank
     * (lowest rank on ties). With at least {@code ranks} parameters every rank owns one.
     */
    static Map<Parameter, Integer> balanced(List<Parameter> params, int ranks) {
        List<Parameter> bySize = new ArrayList<>(params);
        bySize.sort((a, b) -> Long.compare(b.numel(), a.numel()));     // stable: registration order on ties
        long[] load = new long[ranks];
        Map<Parameter, Integer> owner = new IdentityHashMap<>();
        for (Parameter p : bySize) {
            int r = 0;
            for (int i = 1; i < ranks; i++) {
                if (load[i] < load[r]) {
                    r = i;
                }
            }
            load[r] += p.numel();
            owner.put(p, r);
        }
        return owner;
    }

    /**
     * Balance within each group (a gradient bucket) as well as overall, so that a bucket can be reduced with a
     * reduce-scatter of nearly equal owner sections: in each group, largest first onto the rank with the least
     * elements of that group, ties going to the rank with the least elements overall (then the lowest rank).
     * Falls back to {@link #balanced} when that would leave a rank owning nothing although there are at least
     * as many parameters as ranks.
     */
    static Map<Parameter, Integer> balancedPerGroup(List<List<Parameter>> groups, int ranks) {
        long[] total = new long[ranks];
        int[] count = new int[ranks];
        Map<Parameter, Integer> owner = new IdentityHashMap<>();
        List<Parameter> all = new ArrayList<>();
        for (List<Parameter> group : groups) {
            all.addAll(group);
            List<Parameter> bySize = new ArrayList<>(group);
            bySize.sort((a, b) -> Long.compare(b.numel(), a.numel()));
            long[] load = new long[ranks];
            for (Parameter p : bySize) {
                int r = 0;
                for (int i = 1; i < ranks; i++) {
                    if (load[i] < load[r] || load[i] == load[r]
                            && (count[i] == 0 && count[r] > 0 || (count[i] == 0) == (count[r] == 0) && total[i] < total[r])) {
                        r = i;
                    }
                }
                load[r] += p.numel();
                total[r] += p.numel();
                count[r]++;
                owner.put(p, r);
            }
        }
        if (all.size() >= ranks) {
            for (int c : count) {
                if (c == 0) {
                    return balanced(all, ranks);
                }
            }
        }
        return owner;
    }
}
