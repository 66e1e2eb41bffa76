package dev.collie.parallel.dp;

import dev.collie.core.nn.Parameter;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which data-parallel rank owns (updates, keeps the optimizer state of, and under ZeRO-2/3 keeps the gradient
 * and value of) each trainable parameter: whole parameters, except those ZeRO-2/3 split into one row block
 * per rank ({@link RowBlocks}, owner {@link #SPLIT}). The result is a function of the parameters' order and
 * sizes only, so every rank computes the same assignment without communicating.
 */
final class Owners {
    /** The owner of a parameter split into row blocks ({@link RowBlocks}): every rank owns one block. */
    static final int SPLIT = -1;
    /** The owner of a parameter every rank keeps whole (plain data parallel, ZeRO-1: gradients are not sharded). */
    static final int EVERY = -2;

    private Owners() {
    }

    /** Elements each rank owns under {@code owner} ({@code split}: row-block elements per rank). */
    static long[] loads(Map<Parameter, Integer> owner, Map<Parameter, long[]> split, int ranks) {
        long[] load = new long[ranks];
        owner.forEach((p, r) -> {
            if (r == SPLIT) {
                long[] blocks = split.get(p);
                for (int i = 0; i < ranks; i++) {
                    load[i] += blocks[i];
                }
            } else {
                load[r] += p.numel();
            }
        });
        return load;
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
        return balancedPerGroup(groups, ranks, Map.of());
    }

    /**
     * As {@link #balancedPerGroup(List, int)} when the parameters in {@code split} are shared out in row blocks
     * (their elements per rank): they count towards every rank's load, in their group and overall, and map to
     * owner {@link #SPLIT}.
     */
    static Map<Parameter, Integer> balancedPerGroup(List<List<Parameter>> groups, int ranks,
                                                    Map<Parameter, long[]> split) {
        long[] total = new long[ranks];
        int[] count = new int[ranks];
        Map<Parameter, Integer> owner = new IdentityHashMap<>();
        List<Parameter> all = new ArrayList<>();
        for (List<Parameter> group : groups) {
            all.addAll(group);
            long[] load = new long[ranks];
            List<Parameter> bySize = new ArrayList<>();
            for (Parameter p : group) {
                long[] blocks = split.get(p);
                if (blocks == null) {
                    bySize.add(p);
                    continue;
                }
                for (int r = 0; r < ranks; r++) {
                    load[r] += blocks[r];
                    total[r] += blocks[r];
                    count[r]++;
                }
                owner.put(p, SPLIT);
            }
            bySize.sort((a, b) -> Long.compare(b.numel(), a.numel()));
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
        if (all.size() >= ranks && split.isEmpty()) {
            for (int c : count) {
                if (c == 0) {
                    return balanced(all, ranks);
                }
            }
        }
        return owner;
    }
}
