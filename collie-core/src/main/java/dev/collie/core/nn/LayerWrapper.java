package dev.collie.core.nn;

/**
 * Behaviour around a layer's forward and backward (a collective, a gather of sharded parameters) that
 * leaves the model tree as it was: the wrapper is the wrapped module's second face (same parameters,
 * same children, same names), so it replaces the module in its parent without renaming anything.
 * Subclasses call {@link #inner()} for the computation itself.
 */
public abstract class LayerWrapper extends Module implements Layer {
    private final Layer inner;

    /** Wraps {@code inner}, which must be a {@link Module} as well as a {@link Layer}. */
    protected LayerWrapper(Layer inner) {
        super(asModule(inner));
        this.inner = inner;
    }

    private static Module asModule(Layer inner) {
        if (!(inner instanceof Module m)) {
            throw new IllegalArgumentException(inner.getClass().getSimpleName() + " is not a Module");
        }
        return m;
    }

    /** The wrapped layer. */
    public final Layer inner() {
        return inner;
    }

    /** The innermost layer below any number of wrappers. */
    public static Layer unwrap(Layer layer) {
        Layer l = layer;
        while (l instanceof LayerWrapper w) {
            l = w.inner();
        }
        return l;
    }
}
