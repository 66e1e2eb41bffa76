package dev.collie.core.data;

import java.util.Arrays;

/**
 * One training sample: token ids and, position by position, the label each position is trained on.
 * A label of {@link #IGNORE_INDEX} carries no loss (CoLLiE's {@code -100}). Labels are not shifted:
 * the model compares the logits at position {@code t} with {@code labels[t + 1]}.
 *
 * <p>The arrays are shared, not copied; treat them as read-only.
 */
public record Sample(int[] inputIds, int[] labels) {
    /** The label value that contributes no loss. */
    public static final int IGNORE_INDEX = -100;

    public Sample {
        if (inputIds == null || labels == null) {
            throw new IllegalArgumentException("inputIds and labels must not be null");
        }
        if (inputIds.length != labels.length) {
            throw new IllegalArgumentException(
                    "inputIds and labels differ in length: " + inputIds.length + " vs " + labels.length);
        }
    }

    /** A sample trained on every token: the labels are a copy of {@code ids}. */
    public static Sample causal(int[] ids) {
        return new Sample(ids, ids.clone());
    }

    /** The number of tokens. */
    public int length() {
        return inputIds.length;
    }

    /** The number of positions whose label is not {@link #IGNORE_INDEX}. */
    public int labelCount() {
        int n = 0;
        for (int l : labels) {
            if (l != IGNORE_INDEX) {
                n++;
            }
        }
        return n;
    }

    /**
     * Whether the loss counts a token of this sample: a label after the first position that is not
     * {@link #IGNORE_INDEX} (the first label is never predicted).
     */
    public boolean hasLossToken() {
        for (int t = 1; t < labels.length; t++) {
            if (labels[t] != IGNORE_INDEX) {
                return true;
            }
        }
        return false;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Sample s && Arrays.equals(inputIds, s.inputIds) && Arrays.equals(labels, s.labels);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(inputIds) + Arrays.hashCode(labels);
    }

    @Override
    public String toString() {
        return "Sample[inputIds=" + Arrays.toString(inputIds) + ", labels=" + Arrays.toString(labels) + "]";
    }
}
