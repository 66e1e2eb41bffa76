package dev.collie.core.nn;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** An indexed list of child modules named "0", "1", ... (as PyTorch's {@code nn.ModuleList}). */
public final class ModuleList<M extends Module> extends Module {
    private final List<M> items = new ArrayList<>();

    public M add(M m) {
        registerModule(Integer.toString(items.size()), m);
        items.add(m);
        return m;
    }

    /** The module added at {@code i} (see {@link #current} for a replacement). */
    public M get(int i) {
        return items.get(i);
    }

    /**
     * The child at {@code i} as it is now: the module added there, or what replaced it
     * ({@link Module#replaceModule}), which need not be an {@code M}.
     */
    public Module current(int i) {
        return children().get(Integer.toString(i));
    }

    public int size() {
        return items.size();
    }

    public List<M> items() {
        return Collections.unmodifiableList(items);
    }
}
