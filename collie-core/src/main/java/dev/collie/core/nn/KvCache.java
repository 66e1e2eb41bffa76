package dev.collie.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.IdentityHashMap;
import java.util.Map;

/** Keys and values of earlier positions, per attention module, for incremental decoding. */
public final class KvCache {
    private final Map<Object, INDArray[]> entries = new IdentityHashMap<>();
    private int length;

    /** Number of positions cached so far. */
    public int length() {
        return length;
    }

    /** Appends {@code k}, {@code v} ({@code [batch, kvHeads, newLen, headDim]}) for {@code owner}; returns the full pair. */
    public INDArray[] append(Object owner, INDArray k, INDArray v) {
        INDArray[] old = entries.get(owner);
        INDArray[] full = old == null ? new INDArray[] {k.dup(), v.dup()}
                : new INDArray[] {Nd4j.concat(2, old[0], k), Nd4j.concat(2, old[1], v)};
        entries.put(owner, full);
        return full;
    }

    /** Marks the end of one forward: {@code newTokens} positions were added. */
    public void advance(int newTokens) {
        length += newTokens;
    }
}
