package dev.collie.models.decoder;

import dev.collie.core.data.Dataset;
import dev.collie.core.data.JsonlDataset;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.Parameter;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.Trainer;
import dev.collie.optim.AdamW;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

import java.nio.file.Path;
import java.util.Map;

/** The Trainer on the tiny fixture model against PyTorch (its loop alone: collie-core's TrainerTest, on a toy model). */
@NumericalParity
class TrainerParityTest {
    private static final Path TINY = LlamaParityTest.FIXTURES.resolve("tiny-llama");
    private static final Dataset ROWS = JsonlDataset.load(TINY.resolve("adamw_rows.jsonl"), null, 0, 96);

    @Test
    void threeStepsInFileOrderMatchTorchAdamW() {
        DecoderForCausalLM model = DecoderCheckpoint.load(TINY, DataType.FLOAT);
        Trainer.builder().model(model).optimizer(new AdamW(model.namedParameters(), 0.9, 0.999,
                        Agreement.ADAM_EPS_ABOVE_NOISE, 0.01))
                .config(CollieConfig.builder().trainMicroBatchSize(2).shuffle(false).lr(1e-2).build()).trainData(ROWS)
                .build().train();
        try (SafeTensors ref = SafeTensors.open(TINY.resolve("adamw_reference.safetensors"))) {
            double worst = 0;
            for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
                worst = Math.max(worst, LlamaParityTest.maxAbsDiff(e.getValue().data(), ref.load("adamw/final." + e.getKey())));
            }
            Agreement.within("weights after 3 AdamW steps vs torch's", worst, 1e-5);
        }
    }
}
