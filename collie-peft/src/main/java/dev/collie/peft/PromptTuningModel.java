package dev.collie.peft;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Embedding;
import dev.collie.core.nn.KvCache;
import dev.collie.core.nn.LayerStack;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Tape;
import dev.collie.core.tensor.Kernels;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Supplier;

/**
 * Prompt tuning and P-tuning: learned virtual tokens in front of the embedded sequence. The first layer becomes a
 * {@link VirtualTokenLayer} (the base embedding, then the virtual tokens in front), so pipeline parallelism cuts it
 * like any layer; the layers run on a tape of {@code virtual + seq} positions. As in peft, the logits cover the
 * virtual positions too, {@code [batch·(virtualTokens + seq), vocab]}: pad the labels with {@link #labelsFor} (-100
 * in front, as CoLLiE's trainer does) so the loss ignores them.
 */
public final class PromptTuningModel extends PromptLearningModel {
    private final int virtual;
    private volatile VirtualTokenLayer promptLayer;

    /** {@code config}: a {@link PromptTuningConfig} or a {@link PromptEncoderConfig} (P-tuning). */
    PromptTuningModel(LanguageModel base, Supplier<List<Layer>> pipeline, PeftConfig config, boolean flat) {
        super(base, pipeline, config, flat, m -> encoderFor(m, config, flat));
        if (pipeline == null) {
            throw new CollieException(config.type() + " needs the model's layer list (a pipelineLayers() method, or"
                    + " pass it to Peft.wrap) to put the virtual tokens after the embedding");
        }
        if (config instanceof PromptTuningConfig c && !flat) {
            initPrompt(c);
        }
        this.virtual = encoder.tokens();
    }

    private static VirtualTokenEncoder encoderFor(PeftModel m, PeftConfig config, boolean flat) {
        if (config instanceof PromptTuningConfig c) {
            return VirtualTokenEncoder.table(c.numVirtualTokens(), m.shape.hidden(), m.dtype);
        }
        PromptEncoderConfig c = (PromptEncoderConfig) config;
        return flat ? VirtualTokenEncoder.table(c.numVirtualTokens(), m.shape.hidden(), m.dtype)
                : VirtualTokenEncoder.promptMlp(c.numVirtualTokens(), m.shape.hidden(), c.encoderHiddenSize(m.shape),
                        m.dtype);
    }

    private void initPrompt(PromptTuningConfig c) {
        int n = c.numVirtualTokens();
        long[] ids;
        switch (c.init()) {
            case RANDOM -> {
                return;
            }
            case SAMPLE_VOCAB -> {
                ids = new long[n];
                INDArray r = Nd4j.rand(DataType.DOUBLE, n).muli(shape.vocab());
                for (int i = 0; i < n; i++) {
                    ids[i] = Math.min(shape.vocab() - 1, (long) r.getDouble(i));
                }
            }
            case TEXT -> {
                if (c.initTokenIds() == null || c.initTokenIds().isEmpty()) {
                    throw new CollieException("prompt tuning TEXT initialisation needs the token ids of the text");
                }
                ids = new long[n];
                for (int i = 0; i < n; i++) {
                    ids[i] = c.initTokenIds().get(i % c.initTokenIds().size());
                }
            }
            default -> throw new IllegalStateException();
        }
        INDArray rows = Nd4j.createFromArray(ids);
        Embedding.checkIds(rows, shape.vocab());
        encoder.tableParameter().data().assign(Kernels.get().gatherRows(wordEmbedding.weight().data(), rows));
    }

    @Override
    public int virtualTokens() {
        return virtual;
    }

    /** A {@link VirtualTokenLayer} (the base embedding, then the virtual tokens in front), then the base model's layers. */
    @Override
    public List<Layer> pipelineLayers() {
        List<Layer> out = new ArrayList<>(baseLayers());
        out.set(0, promptLayer(out.get(0)));
        return Collections.unmodifiableList(out);
    }

    /** The virtual-token layer around the base model's current embedding layer (made anew when it was replaced). */
    private VirtualTokenLayer promptLayer(Layer embedding) {
        VirtualTokenLayer l = promptLayer;
        if (l == null || l.embedding() != embedding) {
            synchronized (this) {
                l = promptLayer;
                if (l == null || l.embedding() != embedding) {
                    l = new VirtualTokenLayer(embedding, encoder);
                    promptLayer = l;
                }
            }
        }
        return l;
    }

    /** A sibling of {@code tape} of length {@code virtual + seq}, its mask (if any) with the virtual positions' ones in front. */
    @Override
    public Tape layerTape(Tape tape) {
        int b = tape.batchSize();
        Tape inner = tape.sibling(b, virtual + tape.seqLen());
        INDArray m = tape.attentionMask();
        if (m != null) {
            inner.setAttentionMask(Nd4j.concat(1, Nd4j.ones(m.dataType(), b, virtual), m));
        }
        return inner;
    }

    @Override
    INDArray runLayers(Tape inner, INDArray ids) {
        return LayerStack.forward(pipelineLayers(), inner, ids);
    }

    @Override
    void backwardLayers(Tape inner, INDArray dLogits) {
        LayerStack.backward(pipelineLayers(), inner, dLogits);
    }

    /** Generation: the prompt's positions run with the real tokens and enter the cache (which then counts them). */
    @Override
    INDArray firstCachedForward(Tape tape, INDArray ids, KvCache cache) {
        Tape inner = layerTape(tape);
        inner.setKvCache(cache);
        INDArray x = runLayers(inner, ids);
        cache.advance(virtual);   // the caller advances by the real tokens
        tape.save(this, inner);
        return x;
    }
}
