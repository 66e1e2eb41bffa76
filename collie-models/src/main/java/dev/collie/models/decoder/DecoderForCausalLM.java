package dev.collie.models.decoder;

import dev.collie.core.CollieException;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.nn.Embedding;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.LayerStack;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.ModuleList;
import dev.collie.core.nn.RotaryEmbedding;
import dev.collie.core.nn.Tape;
import dev.collie.core.nn.TiedEmbedding;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.Memory;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A decoder of one of the {@link ModelFamily families} for causal language modelling, with the module tree and
 * weight names of the family's checkpoints ({@link FamilyLayout}; LLaMA's {@code model.embed_tokens},
 * {@code model.layers.N.self_attn.q_proj}, {@code model.norm}, {@code lm_head}).
 * The model is its ordered list of {@link #pipelineLayers()} (embedding, blocks, final norm, head):
 * forward runs them in order, backward in reverse; pipeline parallelism cuts the same list.
 * Input ids {@code [batch, seq]} give logits {@code [batch·seq, vocab]}.
 */
public final class DecoderForCausalLM extends Module implements LanguageModel {
    private final DecoderConfig config;
    private final FamilyLayout names;

    /** A module that only holds others, as {@code model} holds {@code model.layers}. */
    private static final class Node extends Module {
        <M extends Module> M put(String name, M m) {
            return registerModule(name, m);
        }
    }

    /**
     * A randomly initialised model (normal(0, initializer_range); norms one), in {@code dtype}, its modules named
     * as the family's checkpoints name them ({@link FamilyLayout}).
     *
     * @throws CollieException before allocating anything when the parameters alone exceed {@link Memory#limit()}
     */
    public DecoderForCausalLM(DecoderConfig config, DataType dtype) {
        long n = config.parameterCount();
        Memory.limit().require(Memory.times(n, dtype.width()), "the model needs %s of parameters ("
                + String.format(Locale.ROOT, "%,d", n) + " × " + dtype + ")");
        this.config = config;
        this.names = config.family().layout();
        place(names.embed(), new Embedding(config.vocabSize(), config.hiddenSize(), dtype, config.initializerRange()));
        ModuleList<DecoderLayer> layers = new ModuleList<>();
        RotaryEmbedding rope = new RotaryEmbedding(config::ropeInvFreq, config.maxPositionEmbeddings(),
                names.rotaryPairs(), config.headDim());
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            layers.add(new DecoderLayer(config, i, rope, dtype));
        }
        place(names.layers(), layers);
        place(names.finalNorm(), names.norm().create(config.hiddenSize(), config.rmsNormEps(), dtype));
        // a tied head is not registered as a module: its weight is stored once, as the embedding's
        if (!config.tieWordEmbeddings()) {
            place(names.head(), new Linear(config.hiddenSize(), config.vocabSize(), names.headBias(), dtype,
                    config.initializerRange()));
        }
    }

    /** Registers {@code m} at the dotted {@code path}, creating the holders on the way. */
    private void place(String path, Module m) {
        String[] parts = path.split("\\.");
        Module parent = this;
        for (int i = 0; i < parts.length; i++) {
            Module child = parent.children().get(parts[i]);
            boolean last = i == parts.length - 1;
            if (child == null || last) {
                Module add = last ? m : new Node();
                child = parent == this ? registerModule(parts[i], add) : ((Node) parent).put(parts[i], add);
            }
            parent = child;
        }
    }

    /** The module at the dotted {@code path} as the tree holds it now (replaced by TP or PEFT, perhaps). */
    private Module find(String path) {
        Module m = this;
        for (String part : path.split("\\.")) {
            m = m.children().get(part);
        }
        return m;
    }

    public DecoderConfig config() {
        return config;
    }

    /**
     * Embedding, each decoder block, final norm, output head: the units pipeline parallelism partitions.
     * Read from the module tree as it is now, so replaced modules (tensor parallel, PEFT) are used.
     */
    @Override
    public List<Layer> pipelineLayers() {
        ModuleList<?> blocks = (ModuleList<?>) find(names.layers());
        List<Layer> out = new ArrayList<>(blocks.size() + 3);
        Layer embed = (Layer) find(names.embed());
        out.add(embed);
        for (int i = 0; i < blocks.size(); i++) {
            out.add((Layer) blocks.current(i));
        }
        out.add((Layer) find(names.finalNorm()));
        out.add(config.tieWordEmbeddings() ? ((TiedEmbedding) embed).outputHead() : (Layer) find(names.head()));
        return Collections.unmodifiableList(out);
    }

    /** The decoder blocks are what activation checkpointing recomputes ({@code ActivationCheckpointing.apply}). */
    @Override
    public List<String> recomputePlan() {
        return List.of(names.layers() + ".*");
    }

    /**
     * How tensor parallelism may split this model, by module-name pattern (applied from outside): Megatron's
     * column/row pairs (a column projection's bias split with it, a row projection's kept whole), a fused q/k/v
     * projection split by whole groups or section by section ({@link dev.collie.core.nn.Attention.QkvLayout}),
     * vocabulary-parallel ends (the head's bias split with its rows).
     */
    @Override
    public Map<String, ParallelStyle> tensorParallelPlan() {
        String block = names.layers() + ".*.";
        String attn = block + names.attention() + ".";
        String mlp = block + names.mlp() + ".";
        String fused = names.projections().fusedQkv();
        Map<String, ParallelStyle> plan = new LinkedHashMap<>();
        plan.put(names.embed(), ParallelStyle.VOCAB);
        plan.put(attn + (fused == null ? "(q_proj|k_proj|v_proj)" : fused), ParallelStyle.COLUMN);
        plan.put(attn + names.projections().output(), ParallelStyle.ROW);
        plan.put(mlp + "(" + String.join("|", names.feedForward().inputProjections()) + ")", ParallelStyle.COLUMN);
        plan.put(mlp + names.feedForward().outputProjection(), ParallelStyle.ROW);
        plan.put(names.head(), ParallelStyle.VOCAB);
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

    /** The blocks over every position, then the final norm and head over each sequence's last one only. */
    @Override
    public INDArray lastPositionLogits(Tape tape, INDArray inputIds) {
        List<Layer> layers = pipelineLayers();
        int n = layers.size();
        INDArray hidden = LayerStack.forward(layers.subList(0, n - 2), tape, inputIds);
        long b = inputIds.size(0);
        long t = hidden.size(0) / b;
        INDArray last = hidden.reshape('c', b, t, hidden.size(1)).get(NDArrayIndex.all(), NDArrayIndex.point(t - 1),
                NDArrayIndex.all()).dup('c');
        return LayerStack.forward(layers.subList(n - 2, n), tape, last);
    }

    /** Backward from the gradient of the logits; parameter gradients arrive through their hooks. */
    @Override
    public void backward(Tape tape, INDArray dLogits) {
        LayerStack.backward(pipelineLayers(), tape, dLogits);
    }
}
