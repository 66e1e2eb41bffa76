package dev.collie.models.llama;

import dev.collie.core.nn.Attention;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.RMSNorm;
import dev.collie.core.nn.RotaryEmbedding;
import dev.collie.core.nn.SwiGluMlp;
import dev.collie.core.nn.Tape;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** One LLaMA block: {@code h = x + attn(norm1(x))}, {@code y = h + mlp(norm2(h))}. */
public final class LlamaDecoderLayer extends Module implements Layer {
    public LlamaDecoderLayer(LlamaConfig c, RotaryEmbedding rope, DataType dtype) {
        double std = c.initializerRange();
        registerModule("self_attn", new Attention(c.hiddenSize(), c.numAttentionHeads(), c.numKeyValueHeads(),
                c.headDim(), c.attentionBias(), rope, dtype, std));
        registerModule("mlp", new SwiGluMlp(c.hiddenSize(), c.intermediateSize(), c.mlpBias(), dtype, std));
        registerModule("input_layernorm", new RMSNorm(c.hiddenSize(), c.rmsNormEps(), dtype));
        registerModule("post_attention_layernorm", new RMSNorm(c.hiddenSize(), c.rmsNormEps(), dtype));
    }

    @Override
    public INDArray forward(Tape tape, INDArray x) {
        INDArray h = x.add(layer("self_attn").forward(tape, layer("input_layernorm").forward(tape, x)));
        return h.addi(layer("mlp").forward(tape, layer("post_attention_layernorm").forward(tape, h)));
    }

    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray dh = dy.add(layer("post_attention_layernorm").backward(tape, layer("mlp").backward(tape, dy)));
        return dh.addi(layer("input_layernorm").backward(tape, layer("self_attn").backward(tape, dh)));
    }
}
