package dev.collie.models.decoder;

import dev.collie.core.CollieException;
import dev.collie.core.data.Dataset;
import dev.collie.core.data.JsonlDataset;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.FusedBackwardOptimizer;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.optim.Sgd;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.Trainer;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Updating each parameter inside backward (LOMO's scheme) must equal a plain SGD step: every input
 * gradient is computed from the weights as they were before their update, and the tied embedding is
 * updated once, with the sum of both of its gradients.
 */
class FusedBackwardTest {
    private static final Dataset ROWS = JsonlDataset.load(
            LlamaParityTest.FIXTURES.resolve("tiny-llama/adamw_rows.jsonl"), null, 0, 96);

    /** SGD applied in the gradient hook, the gradient freed at once. */
    static final class FusedSgd implements FusedBackwardOptimizer {
        private final Map<String, Parameter> params;
        private double lr;
        int updates;

        FusedSgd(Map<String, Parameter> params) {
            this.params = params;
        }

        @Override public Map<String, Parameter> parameters() { return params; }
        @Override public void beginStep(double lr) { this.lr = lr; }
        @Override public void onGradientReady(Parameter p, INDArray grad) {
            p.data().subi(grad.mul(lr));
            p.releaseGrad();
            updates++;
        }
        @Override public Map<String, INDArray> stateDict() { return Map.of(); }
        @Override public void loadStateDict(Map<String, INDArray> state) { }
        @Override public long stateBytes() { return 0; }
    }

    private static DecoderForCausalLM train(String dir, Function<DecoderForCausalLM, Optimizer> opt) {
        DecoderForCausalLM model = DecoderCheckpoint.load(LlamaParityTest.FIXTURES.resolve(dir), DataType.DOUBLE);
        Trainer.builder().model(model).optimizer(opt.apply(model))
                .config(CollieConfig.builder().trainMicroBatchSize(2).shuffle(false).lr(0.5).build())
                .trainData(ROWS).build().train();
        return model;
    }

    private static void sameAsSgd(String dir) {
        DecoderForCausalLM sgd = train(dir, m -> new Sgd(m.namedParameters()));
        FusedSgd[] fused = new FusedSgd[1];
        DecoderForCausalLM lomo = train(dir, m -> fused[0] = new FusedSgd(m.namedParameters()));
        sgd.namedParameters().forEach((n, p) -> {
            double d = LlamaParityTest.maxAbsDiff(p.data(), lomo.namedParameters().get(n).data());
            assertTrue(d < 1e-12, n + " differs by " + d);
            assertTrue(lomo.namedParameters().get(n).gradientBufferBytes() == 0, n + " kept a gradient buffer");
        });
        assertEquals(3L * lomo.parameters().size(), fused[0].updates);
    }

    @Test
    void updatingInsideBackwardEqualsAnSgdStep() {
        sameAsSgd("tiny-llama");
    }

    @Test
    void tiedEmbeddingIsUpdatedOnceWithBothGradients() {
        sameAsSgd("tiny-llama-tied");
    }

    @Test
    void gradientAccumulationIsRefusedWithAClearMessage() {
        DecoderForCausalLM model = DecoderCheckpoint.load(LlamaParityTest.FIXTURES.resolve("tiny-llama"), DataType.FLOAT);
        var e = assertThrows(CollieException.class, () -> Trainer.builder().model(model)
                .optimizer(new FusedSgd(model.namedParameters()))
                .config(CollieConfig.builder().gradientAccumulationSteps(2).build()).trainData(ROWS).build());
        assertTrue(e.getMessage().startsWith("config: gradient_accumulation_steps = 2 cannot be used with FusedSgd"),
                e.getMessage());
    }
}
