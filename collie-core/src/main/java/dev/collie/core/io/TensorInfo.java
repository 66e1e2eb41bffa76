package dev.collie.core.io;

import java.util.Arrays;
import java.util.Objects;

/**
 * What a safetensors header says about one tensor: its dtype, its shape and where its bytes lie.
 *
 * @param name the tensor's name
 * @param dtype the element type stored in the file
 * @param shape the shape, row-major; empty for a scalar (a copy is returned)
 * @param dataBegin first byte of the tensor, relative to the start of the data section
 * @param dataEnd one past the last byte, relative to the start of the data section
 */
public record TensorInfo(String name, SafeTensors.DType dtype, long[] shape, long dataBegin, long dataEnd) {

    public TensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Number of dimensions. */
    public int rank() {
        return shape.length;
    }

    /** Size of dimension {@code d}. */
    public long size(int d) {
        return shape[d];
    }

    /** Number of elements (1 for a scalar). */
    public long numel() {
        long n = 1;
        for (long s : shape) {
            n = Math.multiplyExact(n, s);
        }
        return n;
    }

    /** Number of bytes the tensor occupies in the file. */
    public long byteSize() {
        return dataEnd - dataBegin;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t
                && name.equals(t.name)
                && dtype == t.dtype
                && Arrays.equals(shape, t.shape)
                && dataBegin == t.dataBegin
                && dataEnd == t.dataEnd;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape), dataBegin, dataEnd);
    }

    @Override
    public String toString() {
        return name + ": " + dtype + Arrays.toString(shape) + " @[" + dataBegin + ", " + dataEnd + ")";
    }
}
