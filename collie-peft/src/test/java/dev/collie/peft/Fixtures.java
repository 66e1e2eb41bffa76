package dev.collie.peft;

import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderForCausalLM;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.List;

/** The tiny LLaMA fixture and the peft reference files made by tools/reference/make_peft_fixtures.py. */
final class Fixtures {
    static final Path ROOT = Path.of("../collie-models/src/test/resources/fixtures");
    static final Path TINY = ROOT.resolve("tiny-llama");
    static final Path PEFT = ROOT.resolve("peft");
    static final List<String> METHODS = List.of("lora", "prefix", "prefix-projection", "prompt", "p-tuning");

    private Fixtures() {
    }

    static DecoderForCausalLM tiny(DataType dtype) {
        return DecoderCheckpoint.load(TINY, dtype);
    }

    /** The configurations the fixture script uses, for a fresh wrap. */
    static PeftConfig config(String method) {
        return switch (method) {
            case "lora" -> LoraConfig.builder().r(4).alpha(8).dropout(0)
                    .targets("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj").build();
            case "prefix" -> PrefixTuningConfig.of(3);
            case "prefix-projection" -> PrefixTuningConfig.withProjection(3, 24);
            case "prompt" -> PromptTuningConfig.of(4);
            case "p-tuning" -> PromptEncoderConfig.of(3, 20);
            default -> throw new IllegalArgumentException(method);
        };
    }

    static double maxAbsDiff(INDArray a, INDArray b) {
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE).reshape(a.shape())).amaxNumber().doubleValue();
    }
}
