package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.data.Dataset;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Sgd;
import dev.collie.core.tensor.Backends;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.ToyLanguageModel;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Trainer's loop on a toy model: accumulation, worker threads, events, evaluation, step counts, layouts. */
class TrainerTest {
    private static final int VOCAB = 24;
    private static final Dataset ROWS = ToyLanguageModel.rows(9, 0, VOCAB, 5);

    private static ToyLanguageModel model() {
        return new ToyLanguageModel(VOCAB, 8, DataType.DOUBLE, 7);
    }

    private static List<StepStats> train(ToyLanguageModel m, CollieConfig c, Dataset data, Callback... callbacks) {
        return Trainer.builder().model(m).optimizer(new Sgd(m.namedParameters())).config(c).trainData(data)
                .callbacks(callbacks).build().train();
    }

    private static double maxAbsDiff(ToyLanguageModel a, ToyLanguageModel b) {
        double d = 0;
        for (Map.Entry<String, Parameter> e : a.namedParameters().entrySet()) {
            d = Math.max(d, e.getValue().data().sub(b.namedParameters().get(e.getKey()).data()).amaxNumber().doubleValue());
        }
        return d;
    }

    @Test
    void accumulatingTwoMicroBatchesEqualsOneBatchOfBoth() {
        Dataset even = ToyLanguageModel.rows(8, 10, VOCAB, 3);
        CollieConfig base = CollieConfig.builder().shuffle(false).lr(0.5).build();
        ToyLanguageModel whole = model();
        ToyLanguageModel accumulated = model();
        List<StepStats> a = train(whole, base.toBuilder().trainMicroBatchSize(2).build(), even);
        List<StepStats> b = train(accumulated, base.toBuilder().trainMicroBatchSize(1).gradientAccumulationSteps(2).build(),
                even);
        assertEquals(4, a.size());
        for (int s = 0; s < a.size(); s++) {
            assertEquals(a.get(s).loss(), b.get(s).loss(), 1e-12, "loss of step " + s);
        }
        Agreement.within("float64: accumulated vs whole batch, weights after 4 SGD steps", maxAbsDiff(whole, accumulated),
                1e-12);
    }

    @Test
    void workerThreadsSplittingUnevenRowsGiveTheSameStepsAsOneThread() {
        // rows of different lengths: padding, and a different count of trained tokens per worker's part
        CollieConfig base = CollieConfig.builder().trainMicroBatchSize(3).shuffle(false).lr(0.5).build();
        List<ToyLanguageModel> models = new ArrayList<>();
        List<List<StepStats>> stats = new ArrayList<>();
        try {
            for (int workers : new int[] {1, 2, 3}) {
                ToyLanguageModel m = model();
                stats.add(train(m, base.toBuilder().workerThreads(workers).build(), ROWS));
                models.add(m);
            }
        } finally {
            Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
        }
        double worst = 0;
        for (int k = 1; k < models.size(); k++) {
            for (int s = 0; s < 3; s++) {
                assertEquals(stats.get(0).get(s).loss(), stats.get(k).get(s).loss(), 1e-12, "loss of step " + s);
            }
            worst = Math.max(worst, maxAbsDiff(models.get(0), models.get(k)));
        }
        Agreement.within("float64: 2 and 3 worker threads vs 1, weights after 3 SGD steps", worst, 1e-12);
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
        Dataset rows = ToyLanguageModel.rows(6, 12, VOCAB, 9);
        ToyLanguageModel m = model();
        List<StepStats> stats = Trainer.builder().model(m).optimizer(new Sgd(m.namedParameters()))
                .config(CollieConfig.builder().trainMicroBatchSize(3).evalPerNSteps(2).shuffle(false).build())
                .trainData(rows).evalData(rows).callbacks(recorder).build().train();
        assertEquals(List.of("train-begin", "epoch-begin 0", "batch-begin 0", "batch-end 1", "batch-begin 1",
                "batch-end 2", "eval-begin", "eval-end", "epoch-end 0", "train-end"), events);
        assertEquals(2, stats.size());
        assertEquals(3 * 12, stats.get(0).tokens());      // the tokens a step reads: 3 rows of 12
    }

    @Test
    void maxStepsStopsEarlyAndEpochsRepeatTheData() {
        ToyLanguageModel m = model();
        Trainer t = Trainer.builder().model(m).optimizer(new Sgd(m.namedParameters()))
                .config(CollieConfig.builder().trainMicroBatchSize(2).trainEpochs(3).maxSteps(7).build())
                .trainData(ToyLanguageModel.rows(6, 8, VOCAB, 1)).build();
        assertEquals(7, t.totalSteps());
        assertEquals(7, t.train().size());
    }

    @Test
    void aConfigAskingForTensorParallelIsRefusedWithoutThatLayout() {
        ToyLanguageModel m = model();
        CollieConfig tp2 = CollieConfig.builder().tpSize(2).build();
        CollieException e = assertThrows(CollieException.class, () -> Trainer.builder().model(m)
                .optimizer(new Sgd(m.namedParameters())).config(tp2).trainData(ROWS).build());
        assertTrue(e.getMessage().startsWith("the config asks for dp_size 1 × tp_size 2 × pp_size 1, but this Trainer"
                + " has 1 data-parallel replica and its model on 1 rank"), e.getMessage());
    }

    @Test
    void settingsThatCannotActInTheRunAreNamed() {
        CollieConfig c = CollieConfig.builder().lr(2e-5).warmupSteps(100).evalPerNSteps(200).build();
        List<String> idle = Trainer.idleSettings(c, 2, true);
        assertEquals(2, idle.size(), idle.toString());
        assertTrue(idle.get(0).contains("warmup_steps = 100") && idle.get(0).contains("2 steps"), idle.get(0));
        assertTrue(idle.get(1).contains("eval_per_n_steps = 200") && idle.get(1).contains("no evaluation"), idle.get(1));
        assertEquals(List.of(), Trainer.idleSettings(c, 500, true));
        assertEquals(1, Trainer.idleSettings(c, 150, true).size(), "only the evaluation interval is beyond 150 steps");
        assertEquals(1, Trainer.idleSettings(c, 2, false).size(), "no evaluation data: no evaluation warning");
    }

    @Test
    void aStopConditionEndsTrainingAfterTheStepItHeldAndRunsTheEndEvents() {
        ToyLanguageModel m = model();
        AtomicBoolean stop = new AtomicBoolean();
        List<Long> ends = new ArrayList<>();
        Callback c = new Callback() {
            @Override
            public void onBatchEnd(Trainer t, StepStats s) {
                if (s.step() == 2) {
                    stop.set(true);       // as a signal handler would, in the middle of the run
                }
            }

            @Override
            public void onTrainEnd(Trainer t) {
                ends.add(t.globalStep());
            }
        };
        Trainer t = Trainer.builder().model(m).optimizer(new Sgd(m.namedParameters()))
                .config(CollieConfig.builder().shuffle(false).lr(0.5).maxSteps(9).build()).trainData(ROWS)
                .callbacks(c).stopWhen(stop::get).build();
        assertEquals(2, t.train().size());
        assertTrue(t.stopped());
        assertEquals(List.of(2L), ends, "onTrainEnd runs at the step it stopped after");
        stop.set(false);
        assertEquals(9, t.train().size(), "a later train() goes on from there");
        assertFalse(t.stopped());
    }
}
