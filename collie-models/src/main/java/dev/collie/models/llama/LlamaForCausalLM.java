package dev.collie.models.llama;

import dev.collie.core.CollieException;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.nn.Embedding;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.LayerStack;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.ModuleList;
import dev.collie.core.nn.RMSNorm;
import dev.collie.core.nn.RotaryEmbedding;
import dev.collie.core.nn.Tape;
import dev.collie.core.nn.TiedEmbedding;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.Memory;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * LLaMA for causal language modelling, with Hugging Face's module tree and weight names
 * ({@code model.embed_tokens}, {@code model.layers.N.self_attn.q_proj}, {@code model.norm}, {@code lm_head}).
 * The model is its ordered list of {@link #pipelineLayers()} (embedding, blocks, final norm, head):
 * forward runs them in order, backward in reverse; pipeline parallelism cuts the same list.
 * Input ids {@code [batch, seq]} give logits {@code [batch·seq, vocab]}.
 */
public final class LlamaForCausalLM extends Module implements LanguageModel {
    private final LlamaConfig config;
    private final Trunk trunk;
    private final ModuleList<LlamaDecoderLayer> blocks;

    /** The model's inner trunk, named {@code model} as in Hugging Face. */
    static final class Trunk extends Module {
        Trunk(LlamaConfig c, DataType dtype) {
            registerModule("embed_tokens", new Embedding(c.vocabSize(), c.hiddenSize(), dtype, c.initializerRange()));
            ModuleList<LlamaDecoderLayer> layers = new ModuleList<>();
            RotaryEmbedding rope = new RotaryEmbedding(c.ropeInvFreq());
            for (int i = 0; i < c.numHiddenLayers(); i++) {
                layers.add(new LlamaDecoderLayer(c, rope, dtype));
            }
            registerModule("layers", layers);
            registerModule("norm", new RMSNorm(c.hiddenSize(), c.rmsNormEps(), dtype));
        }

        Layer part(String name) {
            return layer(name);
        }
    }

    /**
     * A randomly initialised model (normal(0, initializer_range); norms one), in {@code dtype}.
     *
     * @throws CollieException before allocating anything when the parameters alone exceed {@link Memory#limit()}
     */
    @SuppressWarnings("unchecked")
    public LlamaForCausalLM(LlamaConfig config, DataType dtype) {
        long n = config.parameterCount();
        Memory.limit().require(Memory.times(n, dtype.width()), "the model needs %s of parameters ("
                + String.format(Locale.ROOT, "%,d", n) + " × " + dtype + ")");
        this.config = config;
        this.trunk = registerModule("model", new Trunk(config, dtype));
        this.blocks = (ModuleList<LlamaDecoderLayer>) trunk.children().get("layers");
        // a tied head is not registered as a module: its weight is stored once, as embed_tokens
        if (!config.tieWordEmbeddings()) {
            registerModule("lm_head", new Linear(config.hiddenSize(), config.vocabSize(), false, dtype,
                    config.initializerRange()));
        }
    }

    public LlamaConfig config() {
        return config;
    }

    /**
     * Embedding, each decoder block, final norm, output head: the units pipeline parallelism partitions.
     * Read from the module tree as it is now, so replaced modules (tensor parallel, PEFT) are used.
     */
    @Override
    public List<Layer> pipelineLayers() {
        List<Layer> out = new ArrayList<>(blocks.size() + 3);
        Layer embed = trunk.part("embed_tokens");
        out.add(embed);
        for (int i = 0; i < blocks.size(); i++) {
            out.add((Layer) blocks.current(i));
        }
        out.add(trunk.part("norm"));
        out.add(config.tieWordEmbeddings() ? ((TiedEmbedding) embed).outputHead() : layer("lm_head"));
        return Collections.unmodifiableList(out);
    }

    /** The decoder blocks are what activation checkpointing recomputes ({@code ActivationCheckpointing.apply}). */
    @Override
    public List<String> recomputePlan() {
        return List.of("model.layers.*");
    }

    /** How tensor parallelism may split this model, by module-name pattern (applied from outside). */
    @Override
    public Map<String, ParallelStyle> tensorParallelPlan() {
        return TP_PLAN;
    }

    private static final Map<String, ParallelStyle> TP_PLAN = tpPlan();

    private static Map<String, ParallelStyle> tpPlan() {
        Map<String, ParallelStyle> plan = new LinkedHashMap<>();
        plan.put("model.embed_tokens", ParallelStyle.VOCAB);
        plan.put("model.layers.*.self_attn.(q_proj|k_proj|v_proj)", ParallelStyle.COLUMN);
        plan.put("model.layers.*.self_attn.o_proj", ParallelStyle.ROW);
        plan.put("model.layers.*.mlp.(gate_proj|up_proj)", ParallelStyle.COLUMN);
        plan.put("model.layers.*.mlp.down_proj", ParallelStyle.ROW);
        plan.put("lm_head", ParallelStyle.VOCAB);
        return Collections.unmodifiableMap(plan);
    }

    @Override
    public Module module() {
        return this;
    }

    @Override
    public long vocabSize() {
        return config.vocabSize();
    }

    /** Logits {@code [batch·seq, vocab]} for ids {@code [batch, seq]} (the tape carries batch and length). */
    @Override
    public INDArray forward(Tape tape, INDArray inputIds) {
        return LayerStack.forward(pipelineLayers(), tape, inputIds);
    }

    /** Backward from the gradient of the logits; parameter gradients arrive through their hooks. */
    @Override
    public void backward(Tape tape, INDArray dLogits) {
        LayerStack.backward(pipelineLayers(), tape, dLogits);
    }
}
