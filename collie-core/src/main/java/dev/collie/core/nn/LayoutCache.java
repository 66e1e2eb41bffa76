package dev.collie.core.nn;

import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.factory.Nd4j;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * A small least-recently-used cache, shared by threads, for constants that depend only on a batch's layout (rotary
 * tables of unpadded rows, causal masks): they are the same every step, so they are built once instead of once per
 * micro-batch (the Java arrays behind them were most of a step's garbage). Values are built outside any workspace,
 * so they outlive the micro-batch that asked first.
 */
final class LayoutCache<V> {
    private final Map<Object, V> entries;

    LayoutCache(int capacity) {
        this.entries = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Object, V> eldest) {
                return size() > capacity;
            }
        };
    }

    /** The value for {@code key}, built by {@code build} (outside workspaces) the first time. */
    V get(Object key, Supplier<V> build) {
        synchronized (entries) {
            V v = entries.get(key);
            if (v != null) {
                return v;
            }
        }
        V built;
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            built = build.get();
        }
        synchronized (entries) {
            V raced = entries.putIfAbsent(key, built);
            return raced != null ? raced : built;
        }
    }
}
