package dev.collie.peft;

import dev.collie.core.nn.Layer;
import dev.collie.core.nn.LayerWrapper;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Tape;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;

import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/**
 * The first pipeline layer of a prompt-tuned or P-tuned {@link PeftModel}: the base model's embedding layer, with
 * the prompt encoder's {@code n} virtual tokens put in front of every sequence. Ids {@code [batch, seq]} in, rows
 * {@code [batch·(n + seq), hidden]} out, on the model's {@link PromptTuningModel#layerTape layer tape} (length
 * {@code n + seq}, as every later layer sees it). Backward splits the gradient: the real positions' rows go back
 * through the embedding, the virtual positions' rows, summed over the batch, into the encoder.
 *
 * <p>Its parameters are the embedding's and the encoder's (named as in the PEFT model's tree), so the pipeline stage
 * that holds this layer holds the encoder. It is not itself part of the model's tree.
 */
public final class VirtualTokenLayer extends Module implements Layer {
    private final Layer embedding;
    private final VirtualTokenEncoder encoder;

    VirtualTokenLayer(Layer embedding, VirtualTokenEncoder encoder) {
        this.embedding = embedding;
        this.encoder = encoder;
        Layer inner = embedding instanceof Module ? embedding : LayerWrapper.unwrap(embedding);
        if (inner instanceof Module m) {
            registerModule("embed_tokens", m);
        }
        registerModule("prompt_encoder", encoder);
    }

    /** The base model's embedding layer this layer runs first. */
    public Layer embedding() {
        return embedding;
    }

    public VirtualTokenEncoder encoder() {
        return encoder;
    }

    @Override
    public INDArray forward(Tape tape, INDArray ids) {
        int n = encoder.tokens();
        int b = tape.batchSize();
        int t = tape.seqLen() - n;
        if (ids.rank() != 2 || ids.size(0) != b || ids.size(1) != t) {
            throw new IllegalArgumentException("ids " + Arrays.toString(ids.shape()) + " do not fit a layer tape of "
                    + b + " rows of " + n + " virtual + " + t + " real positions: run this layer on the PEFT model's"
                    + " layerTape");
        }
        INDArray emb = embedding.forward(tape, ids);
        INDArray prompts = encoder.forward(tape);
        long h = emb.size(1);
        return Nd4j.concat(1, prompts.reshape('c', 1, n, h).broadcast(b, n, h), emb.reshape('c', b, t, h))
                .reshape('c', (long) b * (n + t), h);
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        int n = encoder.tokens();
        int b = tape.batchSize();
        int t = tape.seqLen() - n;
        long h = dy.size(1);
        INDArray d3 = dy.reshape('c', b, n + t, h);
        INDArray dPrompt = d3.get(all(), interval(0, n), all()).sum(0);
        INDArray dReal = d3.get(all(), interval(n, n + t), all()).dup('c').reshape('c', (long) b * t, h);
        INDArray dIds = embedding.backward(tape, dReal);
        encoder.backward(tape, dPrompt);
        return dIds;
    }
}
