package dev.collie.core.tensor;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Copies of arrays in another floating type that keep their layout: a view whose elements fill one dense span of
 * its buffer (a transposed or permuted array, the heads view of a row-major array) is copied span for span, so
 * the copy has the same shape, strides and order and a kernel reading it takes the same path as on the original.
 * Conversions to bfloat16 round to nearest, ties to even (libnd4j's cast; {@code Bf16Test} checks the halfway
 * cases), so a widened value is within 2⁻⁸ of the original relative to it (half a unit in the last of its 8 significant bits).
 */
public final class Bf16 {
    private Bf16() {
    }

    /** {@code x} rounded to bfloat16, in the current workspace. */
    public static INDArray narrow(INDArray x) {
        return copy(x, DataType.BFLOAT16);
    }

    /** {@code x} (a bfloat16 array) as float32, exactly, in the current workspace. */
    public static INDArray widen(INDArray x) {
        return copy(x, DataType.FLOAT);
    }

    /** A copy of {@code x} as {@code type} in the current workspace, with {@code x}'s layout where it has one span. */
    public static INDArray copy(INDArray x, DataType type) {
        if (defaultStrides(x) || !denseSpan(x)) {
            // strides as a fresh array of its order has them: a plain copy keeps them (fewest native objects); a view
            // with gaps: a dense copy of its values
            return x.dataType() == type ? x.dup(x.ordering()) : x.castTo(type);
        }
        INDArray flat = Nd4j.create(x.data(), new long[] {x.length()}, new long[] {1}, x.offset(), 'c');
        INDArray out = x.dataType() == type ? flat.dup() : flat.castTo(type);
        return Nd4j.create(out.data(), x.shape(), x.stride(), 0, x.ordering());
    }

    /** Whether {@code x} has the strides a new array of its shape and order would have. */
    private static boolean defaultStrides(INDArray x) {
        return java.util.Arrays.equals(x.stride(), Nd4j.getStrides(x.shape(), x.ordering()));
    }

    /** Whether {@code x}'s elements are exactly the {@code length} buffer elements from its offset on. */
    static boolean denseSpan(INDArray x) {
        if (x.isEmpty() || x.isScalar()) {
            return false;
        }
        long[] shape = x.shape();
        long[] stride = x.stride();
        int n = shape.length;
        boolean[] used = new boolean[n];
        long expected = 1;
        for (int k = 0; k < n; k++) {
            // the unused dimension of size > 1 with the smallest stride must step by what the smaller ones span
            int best = -1;
            for (int i = 0; i < n; i++) {
                if (!used[i] && shape[i] > 1 && (best < 0 || stride[i] < stride[best])) {
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            if (stride[best] != expected) {
                return false;
            }
            used[best] = true;
            expected *= shape[best];
        }
        return expected == x.length();
    }
}
