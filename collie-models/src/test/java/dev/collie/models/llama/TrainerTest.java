package dev.collie.models.llama;

import dev.collie.core.CollieException;
import dev.collie.core.data.Dataset;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.JsonlDataset;
import dev.collie.core.data.Sample;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Sgd;
import dev.collie.core.tensor.Backends;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.optim.AdamW;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Trainer on the tiny fixture model: parity with PyTorch, accumulation, events, evaluation. */
@NumericalParity
class TrainerTest {
    private static final Path TINY = LlamaParityTest.FIXTURES.resolve("tiny-llama");
    private static final Dataset ROWS = JsonlDataset.load(TINY.resolve("adamw_rows.jsonl"), null, 0, 96);

    private static LlamaForCausalLM train(CollieConfig config, Callback... callbacks) {
        LlamaForCausalLM model = LlamaCheckpoint.load(TINY, DataType.FLOAT);
        Trainer.builder().model(model).optimizer(new AdamW(model.namedParameters(), 0.9, 0.999, Agreement.ADAM_EPS_ABOVE_NOISE, 0.01))
                .config(config).trainData(ROWS).callbacks(callbacks).build().train();
        return model;
    }

    @Test
    void threeStepsInFileOrderMatchTorchAdamW() {
        LlamaForCausalLM model = train(CollieConfig.builder().trainMicroBatchSize(2).shuffle(false).lr(1e-2).build());
        try (SafeTensors ref = SafeTensors.open(TINY.resolve("adamw_reference.safetensors"))) {
            double worst = 0;
            for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
                worst = Math.max(worst, LlamaParityTest.maxAbsDiff(e.getValue().data(), ref.load("adamw/final." + e.getKey())));
            }
            Agreement.within("weights after 3 AdamW steps vs torch's", worst, 1e-5);
        }
    }

    @Test
    void aConfigAskingForTensorParallelIsRefusedWithoutThatLayout() {
        LlamaForCausalLM model = LlamaCheckpoint.load(TINY, DataType.FLOAT);
        CollieConfig tp2 = CollieConfig.builder().tpSize(2).build();
        CollieException e = assertThrows(CollieException.class, () -> Trainer.builder().model(model)
                .optimizer(new AdamW(model.namedParameters())).config(tp2).trainData(ROWS).build());
        assertTrue(e.getMessage().startsWith("the config asks for dp_size 1 × tp_size 2 × pp_size 1, but this Trainer"
                + " has 1 data-parallel replica and its model on 1 rank"), e.getMessage());
    }

    @Test
    void accumulatingTwoMicroBatchesEqualsOneBatchOfBoth() {
        CollieConfig base = CollieConfig.builder().shuffle(false).lr(1e-2).build();
        LlamaForCausalLM whole = train(base.toBuilder().trainMicroBatchSize(2).build());
        LlamaForCausalLM accumulated = train(base.toBuilder().trainMicroBatchSize(1).gradientAccumulationSteps(2).build());
        double worst = 0;
        for (Map.Entry<String, Parameter> e : whole.namedParameters().entrySet()) {
            worst = Math.max(worst, LlamaParityTest.maxAbsDiff(e.getValue().data(),
                    accumulated.namedParameters().get(e.getKey()).data()));
        }
        Agreement.within("accumulated vs whole batch: weights after 3 AdamW steps", worst, 1e-5);
    }

    @Test
    void workerThreadsSplittingUnevenRowsGiveTheSameStepsAsOneThread() {
        // rows of different lengths (so padding, and a different count of trained tokens per part)
        Random r = new Random(5);
        List<Sample> samples = new ArrayList<>();
        for (int i = 0; i < 9; i++) {
            int[] ids = new int[4 + r.nextInt(9)];
            for (int j = 0; j < ids.length; j++) {
                ids[j] = r.nextInt(96);
            }
            samples.add(Sample.causal(ids));
        }
        Dataset data = Datasets.of(samples);
        // plain SGD, so a weight difference is the gradient difference (Adam would magnify fp32 noise)
        CollieConfig base = CollieConfig.builder().trainMicroBatchSize(3).gradientAccumulationSteps(1).shuffle(false)
                .lr(0.5).build();
        List<LlamaForCausalLM> models = new ArrayList<>();
        List<List<StepStats>> stats = new ArrayList<>();
        try {
            for (int workers : new int[] {1, 2, 3}) {
                LlamaForCausalLM model = LlamaCheckpoint.load(TINY, DataType.FLOAT);
                stats.add(Trainer.builder().model(model).optimizer(new Sgd(model.namedParameters()))
                        .config(base.toBuilder().workerThreads(workers).build()).trainData(data).build().train());
                models.add(model);
            }
        } finally {
            Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
        }
        double worstLoss = 0;
        double worst = 0;
        for (int k = 1; k < models.size(); k++) {
            for (int s = 0; s < 3; s++) {
                worstLoss = Math.max(worstLoss, Math.abs(stats.get(0).get(s).loss() - stats.get(k).get(s).loss()));
            }
            for (Map.Entry<String, Parameter> e : models.get(0).namedParameters().entrySet()) {
                worst = Math.max(worst, LlamaParityTest.maxAbsDiff(e.getValue().data(),
                        models.get(k).namedParameters().get(e.getKey()).data()));
            }
        }
        Agreement.within("2 and 3 worker threads vs 1: losses", worstLoss, 1e-5);
        Agreement.within("2 and 3 worker threads vs 1: weights after 3 SGD steps", worst, 1e-6);
    }

    @Test
    void callbacksSeeEveryEventInOrderAndEvaluationReportsPerplexity() {
        List<String> events = new ArrayList<>();
        Callback recorder = new Callback() {
            @Override public void onTrainBegin(Trainer t) { events.add("train-begin"); }
            @Override public void onEpochBegin(Trainer t, int e) { events.add("epoch-begin " + e); }
            @Override public void onBatchBegin(Trainer t, long s) { events.add("batch-begin " + s); }
            @Override public void onBatchEnd(Trainer t, StepStats s) { events.add("batch-end " + s.step()); }
            @Override public void onEvaluateBegin(Trainer t) { events.add("eval-begin"); }
            @Override public void onEvaluateEnd(Trainer t, Map<String, Double> r) {
                assertEquals(Math.exp(r.get("loss")), r.get("ppl"), 1e-9);
                events.add("eval-end");
            }
            @Override public void onEpochEnd(Trainer t, int e) { events.add("epoch-end " + e); }
            @Override public void onTrainEnd(Trainer t) { events.add("train-end"); }
        };
        LlamaForCausalLM model = LlamaCheckpoint.load(TINY, DataType.FLOAT);
        Trainer trainer = Trainer.builder().model(model).optimizer(new AdamW(model.namedParameters()))
                .config(CollieConfig.builder().trainMicroBatchSize(3).evalPerNSteps(2).shuffle(false).build())
                .trainData(ROWS).evalData(ROWS).callbacks(recorder).build();
        List<StepStats> stats = trainer.train();
        assertEquals(List.of("train-begin", "epoch-begin 0", "batch-begin 0", "batch-end 1", "batch-begin 1",
                "batch-end 2", "eval-begin", "eval-end", "epoch-end 0", "train-end"), events);
        assertEquals(2, stats.size());
        assertEquals(3 * 12, stats.get(0).tokens());
    }

    @Test
    void maxStepsStopsEarlyAndEpochsRepeatTheData() {
        LlamaForCausalLM model = LlamaCheckpoint.load(TINY, DataType.FLOAT);
        Trainer t = Trainer.builder().model(model).optimizer(new AdamW(model.namedParameters()))
                .config(CollieConfig.builder().trainMicroBatchSize(2).trainEpochs(3).maxSteps(7).build())
                .trainData(ROWS).build();
        assertEquals(7, t.totalSteps());
        assertEquals(7, t.train().size());
    }
}
