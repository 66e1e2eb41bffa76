package dev.collie.peft;

import dev.collie.core.testing.ToyLanguageModel;
import dev.collie.core.nn.Parameter;
import dev.collie.core.tensor.ActivationDtype;
import dev.collie.core.train.StepRunner;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * bf16-stored activations under the adapters (LoRA with dropout, whose mask is kept exactly; prefix tuning, whose
 * keys and values join attention's): the adapters' gradients within bf16's precision of the fp32 ones.
 */
class PeftActivationDtypeTest {
    private static DecoderForCausalLM base() {
        DecoderConfig c = DecoderConfig.builder().vocabSize(96).hiddenSize(64).intermediateSize(160)
                .numHiddenLayers(2).numAttentionHeads(4).numKeyValueHeads(2).maxPositionEmbeddings(64)
                .initializerRange(0.1).build();
        Nd4j.getRandom().setSeed(5);
        return new DecoderForCausalLM(c, DataType.FLOAT);
    }

    private static Map<String, INDArray> gradients(PeftModel m, ActivationDtype dtype) {
        StepRunner runner = new StepRunner(m, 1);
        runner.setActivationDtype(dtype);
        runner.forwardBackward(List.of(ToyLanguageModel.randomBatch(2, 16, 96, 11)));
        runner.close();
        Map<String, INDArray> out = new LinkedHashMap<>();
        m.module().namedParameters().forEach((n, p) -> {
            if (p.requiresGrad()) {
                out.put(n, p.grad().dup());
            }
        });
        m.module().parameters().forEach(Parameter::zeroGrad);
        return out;
    }

    /** Two fresh, equal models (LoRA's dropout masks advance with each draw), fp32 and bf16 activations. */
    private static void closeToFp32(Supplier<PeftModel> make) {
        Map<String, INDArray> fp32 = gradients(make.get(), ActivationDtype.FP32);
        Map<String, INDArray> bf16 = gradients(make.get(), ActivationDtype.BF16);
        assertFalse(fp32.isEmpty());
        boolean anyDiffers = false;
        for (String n : fp32.keySet()) {
            INDArray want = fp32.get(n).castTo(DataType.DOUBLE);
            INDArray got = bf16.get(n).castTo(DataType.DOUBLE);
            if (want.norm2Number().doubleValue() == 0) {        // LoRA's A before B leaves zero (B starts at 0)
                assertTrue(got.equals(want), n + ": not zero");
                continue;
            }
            double rel = got.sub(want).norm2Number().doubleValue() / want.norm2Number().doubleValue();
            assertTrue(rel < Math.scalb(1.0, -7), n + ": relative error " + rel);   // as ActivationDtypeTest argues
            anyDiffers |= !got.equals(want);
        }
        assertTrue(anyDiffers, "bitwise the fp32 gradients: nothing was narrowed");
    }

    @Test
    void loraWithDropout() {
        closeToFp32(() -> Peft.wrap(base(), LoraConfig.builder().r(4).alpha(8).dropout(0.2).seed(3)
                .targets("q_proj", "v_proj", "down_proj").build()));
    }

    @Test
    void prefixTuningWithProjection() {
        closeToFp32(() -> Peft.wrap(base(), PrefixTuningConfig.withProjection(3, 32)));
    }
}
