package dev.collie.core.nn;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A node of the model tree: named parameters and named child modules, in registration order, so that
 * {@link #namedParameters()} yields Hugging Face style dotted names ({@code model.layers.0.mlp.up_proj.weight}).
 * Computation lives in {@link Layer} (or a model's own forward/backward); a module holds no per-call state.
 */
public abstract class Module {
    private final Map<String, Parameter> params;
    private final Map<String, Module> children;

    protected Module() {
        this.params = new LinkedHashMap<>();
        this.children = new LinkedHashMap<>();
    }

    /**
     * A second face of {@code sameNode}: the same parameters and children (shared, not copied), so a
     * wrapper that adds behaviour around a module's computation ({@link LayerWrapper}) keeps its names,
     * and a child replaced through either face is replaced in both.
     */
    protected Module(Module sameNode) {
        this.params = sameNode.params;
        this.children = sameNode.children;
    }

    protected final Parameter registerParameter(String name, Parameter p) {
        if (params.containsKey(name) || children.containsKey(name)) {
            throw new IllegalArgumentException("duplicate name " + name);
        }
        params.put(name, p);
        return p;
    }

    protected final <M extends Module> M registerModule(String name, M m) {
        if (params.containsKey(name) || children.containsKey(name)) {
            throw new IllegalArgumentException("duplicate name " + name);
        }
        children.put(name, m);
        return m;
    }

    /** Replaces a child (PEFT and tensor parallel wrap modules this way). */
    public final void replaceModule(String name, Module m) {
        if (!children.containsKey(name)) {
            throw new IllegalArgumentException("no child module " + name + " in " + getClass().getSimpleName());
        }
        children.put(name, m);
    }

    /** The child {@code name} as a layer: composite modules call children through this, so a replaced child is used. */
    protected final Layer layer(String name) {
        return (Layer) children.get(name);
    }

    /** Direct children by name. */
    public final Map<String, Module> children() {
        return Collections.unmodifiableMap(children);
    }

    /** Every parameter under this module with its dotted name; a tied parameter appears under each name. */
    public final Map<String, Parameter> namedParameters() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        collect("", out);
        return out;
    }

    private void collect(String prefix, Map<String, Parameter> out) {
        params.forEach((n, p) -> out.put(prefix + n, p));
        children.forEach((n, m) -> m.collect(prefix + n + ".", out));
    }

    /** Every distinct parameter (tied ones once), in registration order. */
    public final List<Parameter> parameters() {
        IdentityHashMap<Parameter, Boolean> seen = new IdentityHashMap<>();
        List<Parameter> out = new ArrayList<>();
        for (Parameter p : namedParameters().values()) {
            if (seen.put(p, Boolean.TRUE) == null) {
                out.add(p);
            }
        }
        return out;
    }

    /** Every distinct trainable parameter. */
    public final List<Parameter> trainableParameters() {
        List<Parameter> out = new ArrayList<>();
        for (Parameter p : parameters()) {
            if (p.requiresGrad()) {
                out.add(p);
            }
        }
        return out;
    }

    /** Number of distinct parameter elements. */
    public final long parameterCount() {
        long n = 0;
        for (Parameter p : parameters()) {
            n += p.numel();
        }
        return n;
    }

    /** Every module under this one (itself included, as "") with its dotted name. */
    public final Map<String, Module> namedModules() {
        Map<String, Module> out = new LinkedHashMap<>();
        walk("", out);
        return out;
    }

    private void walk(String name, Map<String, Module> out) {
        out.put(name, this);
        children.forEach((n, m) -> m.walk(name.isEmpty() ? n : name + "." + n, out));
    }

    /** Drops every parameter's gradient. */
    public final void zeroGrad() {
        for (Parameter p : parameters()) {
            p.zeroGrad();
        }
    }
}
