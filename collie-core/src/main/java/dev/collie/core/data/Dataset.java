package dev.collie.core.data;

/** A random-access collection of {@link Sample}s, so that a {@link DataLoader} can shuffle it. */
public interface Dataset {
    /** The number of samples. */
    int size();

    /** The sample at {@code i}, {@code 0 <= i < size()}. */
    Sample get(int i);
}
