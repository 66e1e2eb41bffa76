package dev.collie.parallel.dp;

/**
 * When ZeRO-2/3 split a parameter into row blocks ({@link RowBlocks}) instead of giving it whole to one owner.
 * Owners are first assigned by whole parameters; if some rank's elements then differ from the mean (total ÷
 * ranks) by more than {@code tolerance}, the parameters larger than {@code fraction} of that mean (with at
 * least one row per rank) are split, largest first, one at a time, until the ranks are within the tolerance
 * or none is left. A model whole ownership already balances (the 134M LLaMA at dp 2) is left as it was; one
 * whose embedding and head dwarf the rest of a rank's share (the same model at dp 4) has them split.
 *
 * @param enabled   false: whole parameters only (fused-backward optimizers, whose update rules may need a whole
 *                  matrix, such as AdaLomo's factored moments)
 * @param fraction  only parameters of more than {@code fraction × total/ranks} elements are split
 * @param tolerance the largest relative distance of a rank's elements from the mean left alone; negative:
 *                  split every parameter above the size limit (tests)
 */
record SplitPolicy(boolean enabled, double fraction, double tolerance) {
    /** Split the parameters over a quarter of a rank's share while a rank is more than 5 % off the mean. */
    static final SplitPolicy DEFAULT = new SplitPolicy(true, 0.25, 0.05);
    /** Whole parameters only. */
    static final SplitPolicy OFF = new SplitPolicy(false, 0.25, 0.05);

    /** Every parameter over {@code fraction} of a rank's share is split, balanced or not. */
    static SplitPolicy always(double fraction) {
        return new SplitPolicy(true, fraction, -1);
    }

    static SplitPolicy of(boolean splitLargeParameters) {
        return splitLargeParameters ? DEFAULT : OFF;
    }

    /** Whether {@code load} (elements per rank) is within the tolerance of its mean. */
    boolean balanced(long[] load) {
        if (tolerance < 0) {
            return false;
        }
        double mean = 0;
        for (long l : load) {
            mean += l;
        }
        mean /= load.length;
        for (long l : load) {
            if (Math.abs(l - mean) > tolerance * mean) {
                return false;
            }
        }
        return true;
    }
}
