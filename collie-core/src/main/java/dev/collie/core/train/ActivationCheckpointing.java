package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Checkpointed;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.LayerWrapper;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.ModuleNames;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Activation checkpointing applied from outside the model, as tensor parallelism is: every module its
 * {@link LanguageModel#recomputePlan()} names is replaced in the tree by a {@link Checkpointed} wrapper (same
 * names), or unwrapped again. Model code has no checkpointing branch.
 */
public final class ActivationCheckpointing {
    private ActivationCheckpointing() {
    }

    /**
     * Wraps ({@code on}) or unwraps the model's recompute units; wrapping twice or unwrapping an unwrapped model
     * changes nothing. Returns how many modules the plan matched.
     *
     * @throws CollieException when {@code on} and the model names no module to recompute
     */
    public static int apply(LanguageModel model, boolean on) {
        List<Pattern> plan = model.recomputePlan().stream().map(ModuleNames::pattern).toList();
        Module root = model.module();
        Map<String, Module> modules = root.namedModules();
        List<String> names = new ArrayList<>();
        for (String name : modules.keySet()) {
            if (!name.isEmpty() && plan.stream().anyMatch(p -> p.matcher(name).matches())) {
                names.add(name);
            }
        }
        if (on && names.isEmpty()) {
            throw new CollieException(model.getClass().getSimpleName() + " names no module to recompute"
                    + " (LanguageModel.recomputePlan()), so activation checkpointing cannot apply");
        }
        for (String name : names) {
            int dot = name.lastIndexOf('.');
            Module parent = dot < 0 ? root : modules.get(name.substring(0, dot));
            String child = name.substring(dot + 1);
            Module current = parent.children().get(child);
            if (on && !wrapsCheckpointed((Layer) current)) {
                parent.replaceModule(child, new Checkpointed((Layer) current));
            } else if (!on && current instanceof Checkpointed c) {
                parent.replaceModule(child, (Module) c.inner());
            } else if (!on && wrapsCheckpointed((Layer) current)) {
                throw new CollieException(name + " is recomputed inside a " + current.getClass().getSimpleName()
                        + " wrapper (parallelism wrapped it after checkpointing was turned on): turn checkpointing off"
                        + " before the model is parallelized");
            }
        }
        return names.size();
    }

    /** Whether {@code l}, or a layer it wraps, is a {@link Checkpointed}. */
    private static boolean wrapsCheckpointed(Layer l) {
        for (Layer x = l; ; x = ((LayerWrapper) x).inner()) {
            if (x instanceof Checkpointed) {
                return true;
            }
            if (!(x instanceof LayerWrapper)) {
                return false;
            }
        }
    }
}
