package dev.collie.core.nn;

import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.IdentityHashMap;
import java.util.Map;

import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/**
 * Keys and values of earlier positions, per attention module, for incremental decoding. Each module's keys and
 * values live in buffers {@code [batch, kvHeads, capacity, headDim]} allocated once, outside any workspace: a step
 * writes its new positions in place and attends over a view of the filled ones, so a step copies only what it adds
 * (a cache that concatenated would copy all of it every token). A buffer that fills up doubles.
 */
public final class KvCache {
    private final Map<Object, Entry> entries = new IdentityHashMap<>();
    private final int initialCapacity;
    private int length;

    /** A cache that sizes its buffers on demand. */
    public KvCache() {
        this(0);
    }

    /** A cache whose buffers hold {@code capacity} positions before they grow (the prompt plus the new tokens). */
    public KvCache(int capacity) {
        this.initialCapacity = Math.max(0, capacity);
    }

    /** Number of positions cached so far. */
    public int length() {
        return length;
    }

    /**
     * Appends {@code k}, {@code v} ({@code [batch, kvHeads, newLen, headDim]}) for {@code owner} after the positions it
     * holds; returns views {@code [batch, kvHeads, filled, headDim]} of all of them.
     */
    public INDArray[] append(Object owner, INDArray k, INDArray v) {
        Entry e = entries.get(owner);
        long add = k.size(2);
        long from = e == null ? 0 : e.filled;
        if (e == null || from + add > e.keys.size(2)) {
            e = grow(e, k, v, Math.max(from + add, Math.max(initialCapacity, 2 * (e == null ? 0 : e.keys.size(2)))));
            entries.put(owner, e);
        }
        e.keys.get(all(), all(), interval(from, from + add), all()).assign(k);
        e.values.get(all(), all(), interval(from, from + add), all()).assign(v);
        e.filled = from + add;
        return new INDArray[] {e.keys.get(all(), all(), interval(0, e.filled), all()),
            e.values.get(all(), all(), interval(0, e.filled), all())};
    }

    /** Marks the end of one forward: {@code newTokens} positions were added. */
    public void advance(int newTokens) {
        length += newTokens;
    }

    /** Bytes the buffers hold. */
    public long bytes() {
        long n = 0;
        for (Entry e : entries.values()) {
            n += 2 * e.keys.length() * e.keys.dataType().width();
        }
        return n;
    }

    /** Buffers of {@code capacity} positions holding {@code old}'s filled ones (none if null). */
    private static Entry grow(Entry old, INDArray k, INDArray v, long capacity) {
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            Entry e = new Entry(Nd4j.createUninitialized(k.dataType(), k.size(0), k.size(1), capacity, k.size(3)),
                    Nd4j.createUninitialized(v.dataType(), v.size(0), v.size(1), capacity, v.size(3)));
            if (old != null && old.filled > 0) {
                e.keys.get(all(), all(), interval(0, old.filled), all())
                        .assign(old.keys.get(all(), all(), interval(0, old.filled), all()));
                e.values.get(all(), all(), interval(0, old.filled), all())
                        .assign(old.values.get(all(), all(), interval(0, old.filled), all()));
                e.filled = old.filled;
            }
            return e;
        }
    }

    private static final class Entry {
        final INDArray keys;
        final INDArray values;
        long filled;

        Entry(INDArray keys, INDArray values) {
            this.keys = keys;
            this.values = values;
        }
    }
}
