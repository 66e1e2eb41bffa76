package dev.collie.core.train;

import java.util.ArrayList;
import java.util.List;

/**
 * The best {@code k} named values offered so far (CoLLiE's {@code TopkQueue}): while fewer than {@code k} are kept
 * a value joins; after that it replaces the worst kept one unless that one is strictly better, so on a tie the newer
 * value wins, and of several equally worst the oldest goes. {@code k < 0} keeps every value. A value that is not
 * finite is never kept.
 */
final class TopK {
    /** One kept value and the name it was offered under (a checkpoint folder). */
    record Entry(String name, double value) {
    }

    /** What an offer did: whether the name is kept now, and the entry it pushed out (null for none). */
    record Offer(boolean kept, Entry evicted) {
    }

    private final int k;
    private final TrackedMetric metric;
    private final List<Entry> kept = new ArrayList<>();    // in the order they joined

    TopK(int k, TrackedMetric metric) {
        this.k = k;
        this.metric = metric;
    }

    Offer offer(String name, double value) {
        if (!Double.isFinite(value) || k == 0) {
            return new Offer(false, null);
        }
        if (k < 0 || kept.size() < k) {
            kept.add(new Entry(name, value));
            return new Offer(true, null);
        }
        Entry worst = kept.get(0);
        for (Entry e : kept) {
            if (metric.better(worst.value(), e.value())) {
                worst = e;
            }
        }
        if (metric.better(worst.value(), value)) {
            return new Offer(false, null);
        }
        kept.remove(worst);
        kept.add(new Entry(name, value));
        return new Offer(true, worst);
    }

    /** The kept entries, in the order they joined. */
    List<Entry> entries() {
        return List.copyOf(kept);
    }

    /** Replaces what is kept (a resumed run's state), in the order given. */
    void restore(List<Entry> entries) {
        kept.clear();
        kept.addAll(entries);
    }
}
