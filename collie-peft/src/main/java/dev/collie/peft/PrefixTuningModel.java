package dev.collie.peft;

import dev.collie.core.nn.Attention;
import dev.collie.core.nn.KvCache;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.nn.TensorParallelContext;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;

import java.util.IdentityHashMap;
import java.util.List;
import java.util.function.Supplier;

import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/**
 * Prefix tuning: learned keys and values in front of every attention layer's own. The encoder runs once per
 * micro-batch ({@link #layerTape}) and the prefix rides on the tape to every attention layer
 * ({@link Attention.Prefix}), which hands back its key and value gradients; {@link #afterLayersBackward} runs the
 * encoder's backward on their sum. Logits are {@code [batch·seq, vocab]}. Under pipeline parallelism every stage runs
 * the encoder (a few rows) and delivers its layers' share of its gradient ({@link #parametersAroundLayers()}); under
 * tensor parallelism each rank hands its attention layers the keys and values of its own key/value heads and the
 * prefix gradient is summed over the ranks.
 */
public final class PrefixTuningModel extends PromptLearningModel {
    private final IdentityHashMap<Attention, Integer> layerOf = new IdentityHashMap<>();
    /** The tensor-parallel group once the model is split (the keys and values are sliced by it). */
    private volatile TensorParallelContext tp;

    PrefixTuningModel(LanguageModel base, Supplier<List<Layer>> pipeline, PrefixTuningConfig c, boolean flat) {
        super(base, pipeline, c, flat, m -> {
            int out = m.shape.numLayers() * 2 * m.shape.kvWidth();
            VirtualTokenEncoder e = flat || !c.prefixProjection()
                    ? VirtualTokenEncoder.table(c.numVirtualTokens(), out, m.dtype)
                    : VirtualTokenEncoder.prefixProjection(c.numVirtualTokens(), m.shape.kvWidth(),
                            c.encoderHiddenSize(m.shape), out, m.dtype);
            if (c.zeroInit() && !flat) {
                e.zeroOutput();
            }
            return e;
        });
        for (Attention a : attentions) {
            layerOf.put(a, layerOf.size());
        }
    }

    /**
     * Runs the encoder on {@code tape}, attaches the keys and values every attention layer puts in front of its own
     * (their gradients are collected for {@link #afterLayersBackward}) and puts the prefix's ones in front of the
     * mask.
     */
    @Override
    public Tape layerTape(Tape tape) {
        if (tape.attentionPrefix() != null) {
            throw new IllegalStateException("the tape already carries an attention prefix (layerTape called twice?)");
        }
        INDArray kv = encoder.forward(tape);
        INDArray grad = tape.isTraining() ? Nd4j.zeros(kv.dataType(), kv.shape()) : null;
        extendMask(tape);
        tape.setAttentionPrefix(new PrefixState(kv, tape.batchSize(), grad));
        return tape;
    }

    /** The encoder's backward from the key/value gradients the attention layers left on the tape. */
    @Override
    public void afterLayersBackward(Tape layerTape) {
        if (layerTape.attentionPrefix() instanceof PrefixState st && st.grad != null) {
            TensorParallelContext c = tp;
            // each rank filled the columns of its own key/value heads: the sum is the whole gradient, on every rank
            encoder.backward(layerTape, c == null ? st.grad : c.allReduceSum(st.grad));
        }
    }

    /** The encoder's parameters: used around the layers, so by every pipeline stage. */
    @Override
    public List<Parameter> parametersAroundLayers() {
        return encoder.parameters();
    }

    /** Hands each attention layer the keys and values of this rank's key/value heads from now on. */
    @Override
    public void tensorParallelApplied(TensorParallelContext ctx) {
        super.tensorParallelApplied(ctx);
        this.tp = ctx;
    }

    /** The base model's forward (its layers) on the tape carrying the prefix. */
    @Override
    INDArray runLayers(Tape inner, INDArray ids) {
        return base.forward(inner, ids);
    }

    @Override
    void backwardLayers(Tape inner, INDArray dLogits) {
        base.backward(inner, dLogits);
    }

    /** Generation: the prefix's keys and values enter the KV cache; then the base model runs on the real tokens. */
    @Override
    INDArray firstCachedForward(Tape tape, INDArray ids, KvCache cache) {
        INDArray kv = encoder.forward(Tape.forInference(1, encoder.tokens()));
        for (Attention a : attentions) {
            INDArray[] p = keysValues(kv, a, tape.batchSize());
            cache.append(a, p[0], p[1]);
        }
        cache.advance(encoder.tokens());
        tape.setKvCache(cache);
        return null;
    }

    /** The prefix handed to every attention layer of one forward; collects their key/value gradients. */
    private final class PrefixState implements Attention.Prefix {
        final INDArray kv;
        final int batch;
        final INDArray grad;

        PrefixState(INDArray kv, int batch, INDArray grad) {
            this.kv = kv;
            this.batch = batch;
            this.grad = grad;
        }

        @Override
        public int length() {
            return encoder.tokens();
        }

        @Override
        public INDArray[] keysValues(Tape tape, Attention attention) {
            return PrefixTuningModel.this.keysValues(kv, attention, batch);
        }

        @Override
        public void backward(Tape tape, Attention attention, INDArray dKeys, INDArray dValues) {
            int l = layer(attention);
            grad.get(all(), columns(l, 0)).addi(fromHeads(dKeys));
            grad.get(all(), columns(l, 1)).addi(fromHeads(dValues));
        }
    }

    private int layer(Attention a) {
        Integer l = layerOf.get(a);
        if (l == null) {
            throw new IllegalStateException("an attention module that is not part of the wrapped model");
        }
        return l;
    }

    /** Key/value heads of this rank (all of them when the model is not split). */
    private int localKvHeads() {
        TensorParallelContext c = tp;
        return c == null ? shape.kvHeads() : shape.kvHeads() / c.size();
    }

    /** The first key/value head of this rank. */
    private int firstKvHead() {
        TensorParallelContext c = tp;
        return c == null ? 0 : c.rank() * localKvHeads();
    }

    /**
     * Layer {@code l}'s keys and values {@code [batch, kvHeads, n, headDim]} from the encoder output
     * {@code [n, layers·2·kvHeads·headDim]}: per virtual token, for each layer keys then values, head after head
     * (peft's {@code view(batch, n, layers·2, heads, headDim)} then {@code permute(2, 0, 3, 1, 4)}).
     */
    private INDArray[] keysValues(INDArray kv, Attention a, int batch) {
        int l = layer(a);
        int n = encoder.tokens();
        int kvh = localKvHeads();
        INDArray[] out = new INDArray[2];
        for (int j = 0; j < 2; j++) {
            INDArray cols = kv.get(all(), columns(l, j)).dup('c');
            INDArray heads = cols.reshape('c', n, kvh, shape.headDim()).permute(1, 0, 2).dup('c')
                    .reshape('c', 1, kvh, n, shape.headDim());
            out[j] = batch == 1 ? heads : heads.broadcast(batch, kvh, n, shape.headDim());
        }
        return out;
    }

    /**
     * The encoder output's columns holding layer {@code l}'s keys ({@code j = 0}) or values ({@code j = 1}) for this
     * rank's key/value heads (all heads when the model is not split).
     */
    private INDArrayIndex columns(int l, int j) {
        long from = (long) (2 * l + j) * shape.kvWidth() + (long) firstKvHead() * shape.headDim();
        return interval(from, from + (long) localKvHeads() * shape.headDim());
    }

    /** {@code [batch, kvHeads, n, headDim]} (this rank's heads) summed over the batch, back to {@code [n, kvHeads·headDim]}. */
    private INDArray fromHeads(INDArray d) {
        return d.sum(0).permute(1, 0, 2).dup('c').reshape('c', encoder.tokens(), (long) localKvHeads() * shape.headDim());
    }
}
