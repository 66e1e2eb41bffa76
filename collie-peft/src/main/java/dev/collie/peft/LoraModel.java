package dev.collie.peft;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * LoRA: the targeted linear layers replaced in place by {@link LoraLinear}s; nothing else changes. This model is the
 * base model's own tree (a second face of it, so a child replaced through either, tensor parallelism's
 * {@code lm_head}, is replaced in both), and its forward and backward are the base model's.
 */
public final class LoraModel extends PeftModel {
    /** The dotted names of the wrapped linear layers (the modules are read from the live tree). */
    private final List<String> loraNames = new ArrayList<>();

    LoraModel(LanguageModel base, Supplier<List<Layer>> pipeline, LoraConfig config) {
        super(base.module(), base, pipeline, config, false);
        Map<String, Module> modules = new LinkedHashMap<>(base.module().namedModules());
        for (Map.Entry<String, Module> e : modules.entrySet()) {
            String name = e.getKey();
            if (!(e.getValue() instanceof Linear linear) || !config.matches(name)) {
                continue;
            }
            int dot = name.lastIndexOf('.');
            if (dot < 0 || (pipeline != null && pipeline.get().contains(linear))) {
                throw new CollieException("LoRA target " + name + " is called directly by the model, not through its"
                        + " parent module, so it cannot be wrapped (target layers inside the decoder blocks)");
            }
            Module parent = modules.get(name.substring(0, dot));
            LoraLinear w = new LoraLinear(linear, config.r(), config.scaling(), config.dropout(),
                    config.seed() * 31 + name.hashCode());
            parent.replaceModule(name.substring(dot + 1), w);
            loraNames.add(name);
        }
        if (loraNames.isEmpty()) {
            throw new CollieException("no linear layer matches the LoRA targets "
                    + (config.targetRegex() != null ? "/" + config.targetRegex() + "/" : config.targets())
                    + " (to combine LoRA with tensor parallelism, wrap the whole model first and split the PeftModel)");
        }
    }

    @Override
    public Map<String, LoraLinear> loraModules() {
        Map<String, Module> modules = namedModules();
        Map<String, LoraLinear> out = new LinkedHashMap<>();
        for (String name : loraNames) {
            if (modules.get(name) instanceof LoraLinear l) {
                out.put(name, l);
            }
        }
        return Collections.unmodifiableMap(out);
    }

    @Override
    public INDArray forward(Tape tape, INDArray inputIds) {
        return base.forward(tape, inputIds);
    }

    @Override
    public INDArray lastPositionLogits(Tape tape, INDArray inputIds) {
        return base.lastPositionLogits(tape, inputIds);
    }

    @Override
    public void backward(Tape tape, INDArray dLogits) {
        base.backward(tape, dLogits);
    }

    @Override
    public LanguageModel mergeAndUnload() {
        Map<String, Module> modules = namedModules();
        for (Map.Entry<String, LoraLinear> e : loraModules().entrySet()) {
            e.getValue().merge();
            String name = e.getKey();
            modules.get(name.substring(0, name.lastIndexOf('.')))
                    .replaceModule(name.substring(name.lastIndexOf('.') + 1), e.getValue().baseModule());
        }
        loraNames.clear();
        for (Parameter p : base.module().parameters()) {
            p.setTrainable(true);
        }
        return base;
    }
}
