package dev.collie.core.data;

import dev.collie.core.CollieException;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;

/**
 * Pads samples into a {@link Batch}: ids with the pad id, labels with {@link Sample#IGNORE_INDEX}, the attention
 * mask with 0. Padding goes on the right for training and on the left for generation. The padded length is the
 * longest sample, rounded up to a multiple of {@code padToMultipleOf}, or a fixed length for every batch.
 */
public final class Collator {
    private final int padId;
    private final boolean padLeft;
    private final int fixedLength;
    private final int padToMultipleOf;

    /** A collator padding to the longest sample of each batch. */
    public Collator(int padId, boolean padLeft) {
        this(padId, padLeft, 0, 1);
    }

    private Collator(int padId, boolean padLeft, int fixedLength, int padToMultipleOf) {
        this.padId = padId;
        this.padLeft = padLeft;
        this.fixedLength = fixedLength;
        this.padToMultipleOf = padToMultipleOf;
    }

    /** A builder: pad id 0, right padding, padded to the longest sample. */
    public static Builder builder() {
        return new Builder();
    }

    /** Options of a {@link Collator}. */
    public static final class Builder {
        private int padId;
        private boolean padLeft;
        private int fixedLength;
        private int padToMultipleOf = 1;

        private Builder() {
        }

        /** The id that fills padded positions of the input ids. */
        public Builder padId(int padId) {
            this.padId = padId;
            return this;
        }

        /** Pad on the left (for generation) instead of the right (for training). */
        public Builder padLeft(boolean padLeft) {
            this.padLeft = padLeft;
            return this;
        }

        /** Pad every batch to exactly this length ({@code 0}: to the longest sample). */
        public Builder fixedLength(int fixedLength) {
            if (fixedLength < 0) {
                throw new CollieException("fixed length must be >= 0, got " + fixedLength);
            }
            this.fixedLength = fixedLength;
            return this;
        }

        /** Round the padded length up to a multiple of this ({@code 1}: no rounding). */
        public Builder padToMultipleOf(int multiple) {
            if (multiple < 1) {
                throw new CollieException("pad_to_multiple_of must be >= 1, got " + multiple);
            }
            this.padToMultipleOf = multiple;
            return this;
        }

        public Collator build() {
            if (fixedLength > 0 && fixedLength % padToMultipleOf != 0) {
                throw new CollieException("fixed length " + fixedLength + " is not a multiple of pad_to_multiple_of "
                        + padToMultipleOf);
            }
            return new Collator(padId, padLeft, fixedLength, padToMultipleOf);
        }
    }

    /**
     * Pads {@code samples} into one batch, a row per sample in list order.
     *
     * @throws CollieException if a sample is longer than the fixed length
     */
    public Batch collate(List<Sample> samples) {
        if (samples.isEmpty()) {
            throw new IllegalArgumentException("cannot collate an empty list of samples");
        }
        int longest = 0;
        for (Sample s : samples) {
            longest = Math.max(longest, s.length());
        }
        int t;
        if (fixedLength > 0) {
            if (longest > fixedLength) {
                throw new CollieException("a sample of " + longest + " tokens is longer than the fixed batch length "
                        + fixedLength + "; cut the samples to it (max_length / seq_len)");
            }
            t = fixedLength;
        } else {
            t = Math.max(1, (longest + padToMultipleOf - 1) / padToMultipleOf * padToMultipleOf);
        }
        int b = samples.size();
        long[] ids = new long[b * t];
        long[] labels = new long[b * t];
        long[] mask = new long[b * t];
        long tokens = 0;
        long labelled = 0;
        for (int r = 0; r < b; r++) {
            Sample s = samples.get(r);
            int n = s.length();
            int start = r * t + (padLeft ? t - n : 0);
            int padStart = r * t + (padLeft ? 0 : n);
            Arrays.fill(ids, padStart, padStart + t - n, padId);
            Arrays.fill(labels, padStart, padStart + t - n, Sample.IGNORE_INDEX);
            int[] sIds = s.inputIds();
            int[] sLabels = s.labels();
            for (int j = 0; j < n; j++) {
                ids[start + j] = sIds[j];
                labels[start + j] = sLabels[j];
                mask[start + j] = 1;
                if (sLabels[j] != Sample.IGNORE_INDEX) {
                    labelled++;
                }
            }
            tokens += n;
        }
        return new Batch(matrix(ids, b, t), matrix(labels, b, t), matrix(mask, b, t), tokens, labelled);
    }

    private static INDArray matrix(long[] flat, int rows, int cols) {
        return Nd4j.createFromArray(flat).reshape('c', rows, cols);
    }

    /** The id of padded input positions. */
    public int padId() {
        return padId;
    }

    /** Whether padding goes on the left. */
    public boolean padLeft() {
        return padLeft;
    }

    /** The fixed batch length, or 0 when batches are padded to their longest sample. */
    public int fixedLength() {
        return fixedLength;
    }

    /** The multiple the padded length is rounded up to. */
    public int padToMultipleOf() {
        return padToMultipleOf;
    }
}
