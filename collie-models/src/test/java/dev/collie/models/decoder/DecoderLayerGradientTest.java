package dev.collie.models.decoder;

import dev.collie.core.nn.GradCheck;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.RotaryEmbedding;
import dev.collie.core.nn.Tape;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Float64 finite-difference checks of whole blocks: LLaMA's sequential one and CodeGen's parallel one. */
class DecoderLayerGradientTest {
    private static final DataType D = DataType.DOUBLE;

    private static void check(DecoderConfig c, long seed) {
        RotaryEmbedding rope = new RotaryEmbedding(c::ropeInvFreq, c.maxPositionEmbeddings(),
                c.family().layout().rotaryPairs(), c.headDim());
        DecoderLayer layer = new DecoderLayer(c, 0, rope, D);
        Nd4j.getRandom().setSeed(seed);
        for (Parameter p : layer.parameters()) {
            p.data().addi(Nd4j.randn(D, p.shape()).muli(0.3));
        }
        GradCheck.check(layer, layer.namedParameters(), Nd4j.randn(D, 2 * 4, c.hiddenSize()),
                training -> training ? Tape.forTraining(2, 4) : Tape.forInference(2, 4), seed);
    }

    @Test
    void codeGenParallelBlockMatchesFiniteDifferences() {
        // 8 heads, 2 in each of qkv_proj's 4 groups; rotary on 2 of each head's 4 dimensions
        DecoderConfig c = DecoderConfig.builder(ModelFamily.CODEGEN).vocabSize(10).hiddenSize(32).intermediateSize(20)
                .numHiddenLayers(1).numAttentionHeads(8).rotaryDim(2).maxPositionEmbeddings(16)
                .initializerRange(0.2).build();
        assertEquals(Set.of("attn.qkv_proj.weight", "attn.out_proj.weight", "mlp.fc_in.weight", "mlp.fc_in.bias",
                "mlp.fc_out.weight", "mlp.fc_out.bias", "ln_1.weight", "ln_1.bias"),
                new DecoderLayer(c, 0, new RotaryEmbedding(c.ropeInvFreq()), D).namedParameters().keySet());
        check(c, 21);
    }

    @Test
    void llamaSequentialBlockMatchesFiniteDifferences() {
        check(DecoderConfig.builder().vocabSize(10).hiddenSize(16).intermediateSize(20).numHiddenLayers(1)
                .numAttentionHeads(4).numKeyValueHeads(2).maxPositionEmbeddings(16).initializerRange(0.2).build(), 22);
    }
}
