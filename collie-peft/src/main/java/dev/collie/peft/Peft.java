package dev.collie.peft;

import com.fasterxml.jackson.databind.JsonNode;
import dev.collie.core.CollieException;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Path;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The PEFT entry point, in the manner of Hugging Face peft's {@code get_peft_model}:
 * <pre>{@code
 * PeftModel m = Peft.wrap(model, LoraConfig.builder().r(8).alpha(16).targets("q_proj", "v_proj").build());
 * Optimizer opt = new AdamW(Peft.trainableNamedParameters(m.module()));
 * System.out.println(Peft.parameterReport(m.module()));  // trainable params: ... || all params: ... || trainable%: ...
 * m.saveAdapter(dir);                                        // adapter_config.json + adapter_model.safetensors
 * PeftModel again = Peft.loadAdapter(freshModel, dir);       // also reads adapters saved by peft
 * }</pre>
 * Everything but the adapter is frozen: base weights get no gradient buffers and no optimizer state.
 *
 * <p>With data, tensor or pipeline parallelism, wrap first and split the PEFT model (every rank does the same):
 * <pre>{@code
 * PeftModel m = Peft.wrap(model, lora);
 * Parallelism par = Parallelism.builder().tp(2).pp(2).build(world, m, Peft.trainableNamedParameters(m));
 * ... train with par.configure(Trainer.builder()) and par.optimizerParameters() ...
 * Map<String, INDArray> full = par.gatherFullWeights();       // every rank calls it; null except on the lead rank
 * if (full != null) m.saveAdapter(dir, full);                  // the adapter in its unsplit shapes
 * }</pre>
 * LoRA layers split themselves with their base linear ({@link LoraLinear}); prompt tuning, P-tuning and prefix
 * tuning keep their encoders whole on every rank (prefix tuning hands each rank its key/value heads). Every method can
 * be cut into pipeline stages: prompt tuning's and P-tuning's encoder sits in the first layer
 * ({@link VirtualTokenLayer}), prefix tuning's is used by every stage, which sum their shares of its gradient.
 */
public final class Peft {
    private Peft() {
    }

    /**
     * Adds the adapter described by {@code config} to {@code model} and freezes the rest. Prompt tuning and
     * P-tuning need the model's layer list ({@link LanguageModel#pipelineLayers()}; LLaMA has one).
     */
    public static PeftModel wrap(LanguageModel model, PeftConfig config) {
        return PeftModel.of(model, pipelineOf(model), config, false);
    }

    /** As {@link #wrap(LanguageModel, PeftConfig)}, with the model's ordered layers (embedding first) given. */
    public static PeftModel wrap(LanguageModel model, List<Layer> layers, PeftConfig config) {
        List<Layer> copy = List.copyOf(layers);
        return PeftModel.of(model, () -> copy, config, false);
    }

    /**
     * Reads an adapter directory (written by collie or by peft's {@code save_pretrained}) and applies it to
     * {@code model}; the adapter is trainable. Prefix tuning with {@code prefix_projection} and P-tuning are stored
     * by peft as the encoder's output, so they load (as in peft) as a plain table of virtual tokens.
     */
    public static PeftModel loadAdapter(LanguageModel model, Path dir) {
        PeftConfig config = PeftConfig.load(dir);
        boolean flat = config instanceof PrefixTuningConfig p ? p.prefixProjection()
                : config instanceof PromptEncoderConfig;
        PeftModel m = PeftModel.of(model, pipelineOf(model), config, flat);
        Path file = dir.resolve(PeftConfig.FILE);
        try {
            JsonNode stored = AdapterJson.MAPPER.readTree(file.toFile());
            AdapterFiles.checkShape(m, stored, file.toString());
        } catch (IOException e) {
            throw new CollieException(file + ": cannot read: " + e.getMessage(), e);
        }
        m.loadAdapterWeights(dir);
        return m;
    }

    /** The trainable parameters under {@code m} by dotted name (a tied parameter once): what an optimizer takes. */
    public static Map<String, Parameter> trainableNamedParameters(Module m) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        IdentityHashMap<Parameter, Boolean> seen = new IdentityHashMap<>();
        m.namedParameters().forEach((name, p) -> {
            if (p.requiresGrad() && seen.put(p, Boolean.TRUE) == null) {
                out.put(name, p);
            }
        });
        return out;
    }

    /** {@code {trainable, all}} parameter elements under {@code m}, each distinct parameter counted once. */
    public static long[] parameterCounts(Module m) {
        long trainable = 0;
        for (Parameter p : m.trainableParameters()) {
            trainable += p.numel();
        }
        return new long[] {trainable, m.parameterCount()};
    }

    /**
     * peft's {@code print_trainable_parameters} line, e.g.
     * {@code trainable params: 4,480 || all params: 32,288 || trainable%: 13.8751}.
     */
    public static String parameterReport(Module m) {
        long[] c = parameterCounts(m);
        return String.format(Locale.ROOT, "trainable params: %,d || all params: %,d || trainable%%: %.4f", c[0], c[1],
                100.0 * c[0] / Math.max(1, c[1]));
    }

    /** {@code labels} {@code [batch, seq]} with {@code virtualTokens} columns of -100 in front, as CoLLiE pads them. */
    public static INDArray padLabels(INDArray labels, int virtualTokens) {
        if (virtualTokens == 0) {
            return labels;
        }
        INDArray pad = Nd4j.valueArrayOf(new long[] {labels.size(0), virtualTokens}, CausalLmLoss.IGNORE_INDEX,
                labels.dataType());
        return Nd4j.concat(1, pad, labels);
    }

    /** The model's layer list, read afresh on each use; null when the model exposes none. */
    static Supplier<List<Layer>> pipelineOf(LanguageModel model) {
        try {
            model.pipelineLayers();
        } catch (CollieException e) {
            return null;
        }
        return model::pipelineLayers;
    }
}
