package dev.collie.models.decoder;

import dev.collie.core.nn.Attention;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.RMSNorm;
import dev.collie.core.nn.RotaryEmbedding;
import dev.collie.core.nn.SwiGluMlp;
import dev.collie.core.nn.Tape;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** One LLaMA block: {@code h = x + attn(norm1(x))}, {@code y = h + mlp(norm2(h))}; the family sets the attention's options. */
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
        registerModule(names.mlp(), new SwiGluMlp(names.mlpNames(), c.hiddenSize(), c.intermediateSize(), c.mlpBias(),
                dtype, std));
        registerModule(names.inputNorm(), new RMSNorm(c.hiddenSize(), c.rmsNormEps(), dtype));
        registerModule(names.postAttentionNorm(), new RMSNorm(c.hiddenSize(), c.rmsNormEps(), dtype));
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        INDArray h = x.add(layer(names.attention()).forward(tape, layer(names.inputNorm()).forward(tape, x)));
        return h.addi(layer(names.mlp()).forward(tape, layer(names.postAttentionNorm()).forward(tape, h)));
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray dh = dy.add(layer(names.postAttentionNorm()).backward(tape, layer(names.mlp()).backward(tape, dy)));
        return dh.addi(layer(names.inputNorm()).backward(tape, layer(names.attention()).backward(tape, dh)));
    }
}
