package dev.collie.parallel;

import dev.collie.core.CollieException;

/**
 * The 3D (data × tensor × pipeline) layout of a world of ranks, as Megatron lays it out: tensor-parallel
 * ranks are contiguous (innermost), then data parallel, pipeline outermost:
 * {@code rank = ppRank·dp·tp + dpRank·tp + tpRank}.
 */
public record Topology(int world, int dp, int tp, int pp) {

    /** Validates and builds a topology; every size ≥ 1 and world = dp·tp·pp. */
    public static Topology of(int world, int dp, int tp, int pp) {
        return new Topology(world, dp, tp, pp);
    }

    public Topology {
        if (dp < 1 || tp < 1 || pp < 1 || world < 1) {
            throw new CollieException("parallel sizes must all be at least 1, got world_size " + world + ", dp_size "
                    + dp + ", tp_size " + tp + ", pp_size " + pp);
        }
        if ((long) dp * tp * pp != world) {
            throw new CollieException("dp_size " + dp + " × tp_size " + tp + " × pp_size " + pp + " = "
                    + ((long) dp * tp * pp) + " does not equal world_size " + world);
        }
    }

    /** Tensor-parallel coordinate of {@code rank}. */
    public int tpRank(int rank) {
        check(rank);
        return rank % tp;
    }

    /** Data-parallel coordinate of {@code rank}. */
    public int dpRank(int rank) {
        check(rank);
        return rank / tp % dp;
    }

    /** Pipeline stage of {@code rank}. */
    public int ppRank(int rank) {
        check(rank);
        return rank / (tp * dp);
    }

    /** The global rank with the given coordinates. */
    public int rankOf(int dpRank, int tpRank, int ppRank) {
        if (dpRank < 0 || dpRank >= dp || tpRank < 0 || tpRank >= tp || ppRank < 0 || ppRank >= pp) {
            throw new IllegalArgumentException("coordinates (dp " + dpRank + ", tp " + tpRank + ", pp " + ppRank
                    + ") are outside (" + dp + ", " + tp + ", " + pp + ")");
        }
        return ppRank * dp * tp + dpRank * tp + tpRank;
    }

    /** The ranks sharing {@code rank}'s dp and pp coordinates, in tp order. */
    public int[] tpGroup(int rank) {
        int[] g = new int[tp];
        for (int t = 0; t < tp; t++) {
            g[t] = rankOf(dpRank(rank), t, ppRank(rank));
        }
        return g;
    }

    /** The ranks sharing {@code rank}'s tp and pp coordinates, in dp order. */
    public int[] dpGroup(int rank) {
        int[] g = new int[dp];
        for (int d = 0; d < dp; d++) {
            g[d] = rankOf(d, tpRank(rank), ppRank(rank));
        }
        return g;
    }

    /** The ranks sharing {@code rank}'s dp and tp coordinates, in stage order. */
    public int[] ppGroup(int rank) {
        int[] g = new int[pp];
        for (int p = 0; p < pp; p++) {
            g[p] = rankOf(dpRank(rank), tpRank(rank), p);
        }
        return g;
    }

    /**
     * Checks that a model can be split this way: heads, KV heads, intermediate size and vocabulary divisible
     * by tp, and at least one layer per pipeline stage.
     */
    public void validateModel(int heads, int kvHeads, int intermediate, int vocab, int layers) {
        divisible("num_attention_heads", heads);
        divisible("num_key_value_heads", kvHeads);
        divisible("intermediate_size", intermediate);
        divisible("vocab_size", vocab);
        if (layers < pp) {
            throw new CollieException("pp_size " + pp + " is larger than num_hidden_layers " + layers
                    + "; every pipeline stage needs at least one layer");
        }
    }

    private void divisible(String field, int value) {
        if (value % tp != 0) {
            throw new CollieException("tp_size " + tp + " does not divide " + field + " " + value);
        }
    }

    private void check(int rank) {
        if (rank < 0 || rank >= world) {
            throw new IllegalArgumentException("rank " + rank + " is outside [0, " + world + ")");
        }
    }
}
