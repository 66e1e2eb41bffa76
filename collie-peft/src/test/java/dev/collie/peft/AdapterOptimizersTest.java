package dev.collie.peft;

import dev.collie.core.data.Dataset;
import dev.collie.core.data.JsonlDataset;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.optim.Sgd;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.optim.AdaLomo;
import dev.collie.optim.AdamW;
import dev.collie.optim.Adan;
import dev.collie.optim.Lion;
import dev.collie.optim.Lomo;
import dev.collie.optim.SophiaG;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every optimizer trains adapter parameters through the Trainer, and leaves the frozen base untouched. */
class AdapterOptimizersTest {
    private static final Dataset ROWS = JsonlDataset.load(Fixtures.TINY.resolve("adamw_rows.jsonl"), null, 0, 96);

    private static final Map<String, Function<Map<String, Parameter>, Optimizer>> OPTIMIZERS = Map.of(
            "adamw", AdamW::new, "lion", Lion::new, "adan", Adan::new, "sophia", SophiaG::new, "lomo", Lomo::new,
            "adalomo", AdaLomo::new, "sgd", Sgd::new);

    @ParameterizedTest
    @ValueSource(strings = {"adamw", "lion", "adan", "sophia", "lomo", "adalomo", "sgd"})
    void optimizerUpdatesOnlyTheLoraAdapter(String name) {
        trainsOnlyTheAdapter(name, Fixtures.config("lora"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"adamw", "lomo"})
    void optimizerUpdatesOnlyThePrefix(String name) {
        trainsOnlyTheAdapter(name, PrefixTuningConfig.withProjection(2, 8));
    }

    private static void trainsOnlyTheAdapter(String name, PeftConfig config) {
        PeftModel m = Peft.wrap(Fixtures.tiny(DataType.FLOAT), config);
        for (Parameter p : Peft.trainableNamedParameters(m.module()).values()) {
            p.data().addi(0.05);   // LoRA's B starts at zero, which would leave A without a gradient
        }
        Map<String, INDArray> before = new TreeMap<>();
        m.namedParameters().forEach((n, p) -> before.put(n, p.data().dup()));
        Map<String, Parameter> trainable = Peft.trainableNamedParameters(m.module());
        Optimizer opt = OPTIMIZERS.get(name).apply(trainable);
        List<StepStats> stats = Trainer.builder().model(m).optimizer(opt)
                .config(CollieConfig.builder().trainMicroBatchSize(2).shuffle(false).maxSteps(2).lr(1e-3)
                        .workerThreads(2).build())
                .trainData(ROWS).build().train();
        assertEquals(2, stats.size());
        assertTrue(Double.isFinite(stats.get(1).loss()));
        int[] changed = new int[1];
        m.namedParameters().forEach((n, p) -> {
            boolean same = before.get(n).sub(p.data()).amaxNumber().doubleValue() == 0;
            if (trainable.containsKey(n)) {
                changed[0] += same ? 0 : 1;
            } else {
                assertTrue(same, name + " changed the frozen " + n);
                assertEquals(0, p.gradientBufferBytes(), n + " has a gradient buffer");
            }
        });
        // (Lion's ±lr steps can cancel exactly over two steps for a whole matrix, so not every one need move)
        assertTrue(changed[0] >= trainable.size() / 2, name + " updated " + changed[0] + " of " + trainable.size());
    }
}
