package dev.collie.core.data;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;

/**
 * A padded batch of samples as INT64 matrices of shape {@code [rows, seqLen]}: the input ids, the labels
 * ({@link Sample#IGNORE_INDEX} where there is no loss, padding included) and the attention mask (1 for a real
 * token, 0 for padding). Closing a batch closes its arrays.
 */
public final class Batch implements AutoCloseable {
    private final INDArray inputIds;
    private final INDArray labels;
    private final INDArray attentionMask;
    private final long tokenCount;
    private final long labelCount;

    /** Wraps three INT64 matrices of one shape {@code [rows, seqLen]}; counts the mask's ones and the labels. */
    public Batch(INDArray inputIds, INDArray labels, INDArray attentionMask) {
        this(inputIds, labels, attentionMask, countWhere(attentionMask, 0, false),
                countWhere(labels, Sample.IGNORE_INDEX, false));
    }

    Batch(INDArray inputIds, INDArray labels, INDArray attentionMask, long tokenCount, long labelCount) {
        check(inputIds, "inputIds");
        check(labels, "labels");
        check(attentionMask, "attentionMask");
        if (!Arrays.equals(inputIds.shape(), labels.shape())
                || !Arrays.equals(inputIds.shape(), attentionMask.shape())) {
            throw new IllegalArgumentException("batch arrays differ in shape: inputIds "
                    + Arrays.toString(inputIds.shape()) + ", labels " + Arrays.toString(labels.shape())
                    + ", attentionMask " + Arrays.toString(attentionMask.shape()));
        }
        this.inputIds = inputIds;
        this.labels = labels;
        this.attentionMask = attentionMask;
        this.tokenCount = tokenCount;
        this.labelCount = labelCount;
    }

    @SuppressWarnings("deprecation") // ND4J tags 64-bit integers LONG or, by its alias, INT64
    private static void check(INDArray a, String name) {
        if (a == null || a.rank() != 2 || (a.dataType() != DataType.LONG && a.dataType() != DataType.INT64)) {
            throw new IllegalArgumentException(name + " must be an INT64 matrix [rows, seqLen], got "
                    + (a == null ? "null" : a.dataType() + " " + Arrays.toString(a.shape())));
        }
    }

    /** The number of entries equal to {@code value} ({@code equal}) or different from it. */
    private static long countWhere(INDArray a, long value, boolean equal) {
        check(a, "array");
        long n = 0;
        for (long[] row : a.toLongMatrix()) {
            for (long v : row) {
                if ((v == value) == equal) {
                    n++;
                }
            }
        }
        return n;
    }

    /** Token ids, INT64 {@code [rows, seqLen]}. */
    public INDArray inputIds() {
        return inputIds;
    }

    /** Labels, INT64 {@code [rows, seqLen]}, {@link Sample#IGNORE_INDEX} where there is no loss. */
    public INDArray labels() {
        return labels;
    }

    /** 1 for a real token, 0 for padding, INT64 {@code [rows, seqLen]}. */
    public INDArray attentionMask() {
        return attentionMask;
    }

    /** The number of samples. */
    public int rows() {
        return (int) inputIds.size(0);
    }

    /** The padded length. */
    public int seqLen() {
        return (int) inputIds.size(1);
    }

    /** The number of real (mask 1) tokens. */
    public long tokenCount() {
        return tokenCount;
    }

    /** The number of labels that are not {@link Sample#IGNORE_INDEX} (before any shift for next-token loss). */
    public long labelCount() {
        return labelCount;
    }

    @Override
    public void close() {
        for (INDArray a : new INDArray[] {inputIds, labels, attentionMask}) {
            if (a.closeable()) {
                a.close();
            }
        }
    }

    @Override
    public String toString() {
        return "Batch[rows=" + rows() + ", seqLen=" + seqLen() + ", tokens=" + tokenCount + "]";
    }
}
