package dev.collie.models.decoder;

import dev.collie.core.nn.Attention;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.RotaryEmbedding;
import dev.collie.core.nn.Tape;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One decoder block as its family builds it ({@link FamilyLayout}): LLaMA's {@code h = x + attn(norm1(x))},
 * {@code y = h + mlp(norm2(h))}, or GPT-J's parallel block {@code y = x + attn(norm(x)) + mlp(norm(x))}; the family
 * sets the attention's options, the norms and the feed-forward network.
 */
public final class DecoderLayer extends Module implements Layer {
    private final FamilyLayout names;

    /** Block {@code index} of a model of {@code c} (its layer type picks the attention window). */
    public DecoderLayer(DecoderConfig c, int index, RotaryEmbedding rope, DataType dtype) {
        double std = c.initializerRange();
        names = c.family().layout();
        Attention.Options options = new Attention.Options(c.qkvBias(), c.outputBias(),
                c.qkNorm() ? c.rmsNormEps() : 0, c.attentionWindow(index), names.projections());
        registerModule(names.attention(), new Attention(c.hiddenSize(), c.numAttentionHeads(), c.numKeyValueHeads(),
                c.headDim(), options, rope, dtype, std));
        registerModule(names.mlp(), names.feedForward().create(c.hiddenSize(), c.intermediateSize(), c.mlpBias(),
                dtype, std));
        registerModule(names.inputNorm(), names.norm().create(c.hiddenSize(), c.rmsNormEps(), dtype));
        if (!names.parallelBlock()) {
            registerModule(names.postAttentionNorm(), names.norm().create(c.hiddenSize(), c.rmsNormEps(), dtype));
        }
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        if (names.parallelBlock()) {
            INDArray n = layer(names.inputNorm()).forward(tape, x);
            return x.add(layer(names.attention()).forward(tape, n)).addi(layer(names.mlp()).forward(tape, n));
        }
        INDArray h = x.add(layer(names.attention()).forward(tape, layer(names.inputNorm()).forward(tape, x)));
        return h.addi(layer(names.mlp()).forward(tape, layer(names.postAttentionNorm()).forward(tape, h)));
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        if (names.parallelBlock()) {
            INDArray dn = layer(names.mlp()).backward(tape, dy).addi(layer(names.attention()).backward(tape, dy));
            return dy.add(layer(names.inputNorm()).backward(tape, dn));
        }
        INDArray dh = dy.add(layer(names.postAttentionNorm()).backward(tape, layer(names.mlp()).backward(tape, dy)));
        return dh.addi(layer(names.inputNorm()).backward(tape, layer(names.attention()).backward(tape, dh)));
    }
}
