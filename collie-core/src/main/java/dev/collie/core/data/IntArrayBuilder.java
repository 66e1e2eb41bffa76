package dev.collie.core.data;

import dev.collie.core.CollieException;

import java.util.Arrays;

/** A growable {@code int[]}; package-private storage helper for the in-memory datasets. */
final class IntArrayBuilder {
    private static final int MAX = Integer.MAX_VALUE - 16;
    private int[] data;
    private int size;

    IntArrayBuilder(int capacity) {
        data = new int[Math.max(capacity, 16)];
    }

    int size() {
        return size;
    }

    void add(int v) {
        ensure(1);
        data[size++] = v;
    }

    void addAll(int[] values, int from, int to) {
        int n = to - from;
        ensure(n);
        System.arraycopy(values, from, data, size, n);
        size += n;
    }

    void addAll(int[] values) {
        addAll(values, 0, values.length);
    }

    int get(int i) {
        return data[i];
    }

    /** The first {@code size()} values, trimmed to size. */
    int[] toArray() {
        return toArray(size);
    }

    /** The first {@code length <= size()} values. */
    int[] toArray(int length) {
        if (length > size) {
            throw new IllegalArgumentException("only " + size + " values, not " + length);
        }
        return length == data.length ? data : Arrays.copyOf(data, length);
    }

    private void ensure(int extra) {
        long need = (long) size + extra;
        if (need > MAX) {
            throw new CollieException("the data holds more than " + MAX
                    + " tokens, too many to keep in memory; split the file");
        }
        if (need > data.length) {
            long grown = Math.max(need, Math.min(MAX, (long) data.length + (data.length >> 1) + 16));
            data = Arrays.copyOf(data, (int) grown);
        }
    }
}
