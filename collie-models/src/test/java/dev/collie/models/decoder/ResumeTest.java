package dev.collie.models.decoder;

import dev.collie.core.CollieException;
import dev.collie.core.data.Batch;
import dev.collie.core.data.Dataset;
import dev.collie.core.data.JsonlDataset;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CheckpointCallback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.StepRunner;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.optim.AdaLomo;
import dev.collie.optim.AdamW;
import dev.collie.optim.Adan;
import dev.collie.optim.Lion;
import dev.collie.optim.SophiaG;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Saving a training checkpoint and resuming from it continues exactly where the run stood. */
class ResumeTest {
    private static final Path TINY = LlamaParityTest.FIXTURES.resolve("tiny-llama");
    private static final Dataset ROWS = JsonlDataset.load(TINY.resolve("adamw_rows.jsonl"), null, 0, 96);
    private static final CollieConfig CONFIG = CollieConfig.builder().trainMicroBatchSize(1).trainEpochs(2)
            .maxSteps(8).seed(3).lr(1e-3).lrSchedule("cosine").warmupSteps(2).build();

    private static Function<Map<String, Parameter>, Optimizer> optimizer(String name) {
        return switch (name) {
            case "adamw" -> AdamW::new;
            case "lion" -> Lion::new;
            case "adan" -> Adan::new;
            case "sophia" -> p -> new SophiaG(p, 0.965, 0.99, 0.04, 0.1, 5120, 2);
            case "adalomo" -> AdaLomo::new;
            default -> throw new IllegalArgumentException(name);
        };
    }

    private static Trainer trainer(DecoderForCausalLM model, String opt, CollieConfig config) {
        return Trainer.builder().model(model).optimizer(optimizer(opt).apply(model.namedParameters()))
                .config(config).trainData(ROWS).build();
    }

    @ParameterizedTest
    @ValueSource(strings = {"adamw", "lion", "adan", "sophia", "adalomo"})
    void resumingFromAMidRunCheckpointGivesTheUninterruptedRun(String opt, @TempDir Path tmp) {
        DecoderForCausalLM straight = DecoderCheckpoint.load(TINY, DataType.FLOAT);
        List<StepStats> all = trainer(straight, opt, CONFIG).train();

        // the same run, saving every 5 steps and killed right after step 5 (inside the second epoch)
        DecoderForCausalLM first = DecoderCheckpoint.load(TINY, DataType.FLOAT);
        Trainer a = Trainer.builder().model(first).optimizer(optimizer(opt).apply(first.namedParameters()))
                .config(CONFIG).trainData(ROWS).callbacks(new CheckpointCallback(tmp, 5, 0), new Callback() {
                    @Override
                    public void onStepEnd(Trainer t, long step) {
                        if (step == 5) {
                            throw new IllegalStateException("killed");
                        }
                    }
                }).build();
        assertThrows(IllegalStateException.class, a::train);

        DecoderForCausalLM second = DecoderCheckpoint.load(TINY, DataType.FLOAT);   // fresh weights, overwritten
        Trainer b = trainer(second, opt, CONFIG);
        b.resume(tmp.resolve("step_5"));
        assertEquals(5, b.globalStep());
        List<StepStats> rest = b.train();
        assertEquals(3, rest.size());
        for (int i = 0; i < 3; i++) {
            assertEquals(all.get(5 + i).loss(), rest.get(i).loss(), 0.0, "loss of step " + (6 + i));
        }
        straight.namedParameters().forEach((n, p) ->
                assertEquals(0.0, LlamaParityTest.maxAbsDiff(p.data(), second.namedParameters().get(n).data()), n));
    }

    @Test
    void checkpointCallbackKeepsTheNewestAndTheFinalStep(@TempDir Path tmp) {
        DecoderForCausalLM model = DecoderCheckpoint.load(TINY, DataType.FLOAT);
        Trainer.builder().model(model).optimizer(new AdamW(model.namedParameters()))
                .config(CONFIG.toBuilder().maxSteps(7).build()).trainData(ROWS)
                .callbacks(new CheckpointCallback(tmp, 2, 2)).build().train();
        assertFalse(Files.exists(tmp.resolve("step_2")));
        assertFalse(Files.exists(tmp.resolve("step_4")));
        assertTrue(Files.isRegularFile(tmp.resolve("step_6/trainer.json")));
        assertTrue(Files.isRegularFile(tmp.resolve("step_7/optimizer.safetensors")));
    }

    @Test
    void resumingWithAnotherOptimizerOrFromANonCheckpointIsAClearError(@TempDir Path tmp) {
        DecoderForCausalLM model = DecoderCheckpoint.load(TINY, DataType.FLOAT);
        Trainer a = trainer(model, "adamw", CONFIG.toBuilder().maxSteps(1).build());
        a.train();
        a.save(tmp.resolve("c"));
        var e = assertThrows(CollieException.class, () -> trainer(model, "lion", CONFIG).resume(tmp.resolve("c")));
        assertTrue(e.getMessage().contains("saved with optimizer dev.collie.optim.AdamW"), e.getMessage());
        var e2 = assertThrows(CollieException.class, () -> trainer(model, "adamw", CONFIG).resume(TINY));
        assertTrue(e2.getMessage().endsWith("not a training checkpoint (no trainer.json)"), e2.getMessage());
    }

    /**
     * Worker threads give the same gradient bits on every backward pass of the same batch: three and four, and two
     * with tied embeddings (two contributions per part to one buffer): the parts' contributions are summed in rounds
     * of part order (they met in arrival order: lm_head 1.9e-9, the tied embedding 3.7e-9 apart between passes).
     */
    @ParameterizedTest
    @CsvSource({"3, false", "4, false", "2, true", "3, true"})
    void workerThreadsSumTheirPartsInOrder(int workers, boolean tied) {
        DecoderConfig c = DecoderConfig.builder().vocabSize(256).hiddenSize(64).intermediateSize(160).numHiddenLayers(2)
                .numAttentionHeads(4).numKeyValueHeads(2).maxPositionEmbeddings(64).tieWordEmbeddings(tied).build();
        Nd4j.getRandom().setSeed(1);
        DecoderForCausalLM m = new DecoderForCausalLM(c, DataType.FLOAT);
        Random r = new Random(3);
        long[][] ids = new long[8][32];
        for (long[] row : ids) {
            for (int t = 0; t < row.length; t++) {
                row[t] = r.nextInt(256);
            }
        }
        INDArray x = Nd4j.createFromArray(ids);
        Batch b = new Batch(x, x.dup(), Nd4j.ones(DataType.INT64, 8, 32));
        StepRunner runner = new StepRunner(m, workers);
        Map<String, INDArray> first = null;
        try {
            for (int rep = 0; rep < 8; rep++) {
                m.namedParameters().values().forEach(Parameter::zeroGrad);
                runner.forwardBackward(List.of(b));
                Map<String, INDArray> grads = new TreeMap<>();
                m.namedParameters().forEach((n, p) -> grads.put(n, p.grad().dup()));
                if (first == null) {
                    first = grads;
                    continue;
                }
                for (Map.Entry<String, INDArray> e : grads.entrySet()) {
                    assertEquals(0.0, LlamaParityTest.maxAbsDiff(first.get(e.getKey()), e.getValue()),
                            e.getKey() + ", backward pass " + rep);
                }
            }
        } finally {
            runner.close();
        }
    }
}
