package dev.collie.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.data.Dataset;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Sgd;
import dev.collie.core.testing.ToyLanguageModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checkpoints by a watched evaluation value on a toy model: the top k by name and eviction, {@code last} and
 * {@code epoch_<e>}, loading the best weights back, early stopping on patience, an exact resume with all of them,
 * and the bad input refused before the first step. The toy's held-out loss goes up and down over its 12 steps (SGD
 * at lr 0.5, evaluated after every step), so the best are neither the first nor the last evaluations.
 */
class MonitoredCallbacksTest {
    private static final int VOCAB = 24;
    private static final Dataset TRAIN = ToyLanguageModel.rows(8, 12, VOCAB, 1);
    private static final Dataset EVAL = ToyLanguageModel.rows(4, 12, VOCAB, 2);
    /** 4 steps an epoch, 3 epochs. */
    private static final CollieConfig CONFIG = CollieConfig.builder().trainMicroBatchSize(2).trainEpochs(3)
            .evalPerNSteps(1).lr(0.5).build();
    private static final ObjectMapper JSON = new ObjectMapper();

    private record Run(Trainer trainer, ToyLanguageModel model, List<StepStats> stats, LossHistory history) {
    }

    private static Run run(CollieConfig config, Dataset eval, Path resume, Callback... callbacks) {
        ToyLanguageModel m = new ToyLanguageModel(VOCAB, 8, DataType.DOUBLE, 7);
        LossHistory h = new LossHistory();
        Trainer t = Trainer.builder().model(m).optimizer(new Sgd(m.namedParameters())).config(config)
                .trainData(TRAIN).evalData(eval).callbacks(h).callbacks(callbacks).build();
        if (resume != null) {
            t.resume(resume);
        }
        return new Run(t, m, t.train(), h);
    }

    private static Run run(Callback... callbacks) {
        return run(CONFIG, EVAL, null, callbacks);
    }

    /** The folders in {@code dir}, without the hidden lock files. */
    private static Set<String> folders(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> !n.startsWith("."))
                    .collect(Collectors.toCollection(TreeSet::new));
        }
    }

    private static long stepOf(Path checkpoint) throws IOException {
        return JSON.readTree(checkpoint.resolve("trainer.json").toFile()).path("global_step").asLong();
    }

    private static double result(LossHistory.Eval e, String key) {
        return key.equals("loss") ? e.loss() : e.ppl();
    }

    /** CoLLiE's top-k folder name for the evaluation after {@code step} (4 steps an epoch). */
    private static String topKName(long step, String key, double value) {
        return "epoch_" + (step - 1) / 4 + "-batch_" + (step - 1) % 4 + "-" + key + "_"
                + CheckpointCallback.pythonFloat(value);
    }

    private static Map<String, INDArray> weights(Path checkpoint) {
        Map<String, INDArray> out = new TreeMap<>();
        try (SafeTensors st = SafeTensors.open(checkpoint.resolve("model.safetensors"))) {
            for (String n : st.names()) {
                out.put(n, st.load(n, DataType.DOUBLE));
            }
        }
        return out;
    }

    private static double maxAbsDiff(Map<String, INDArray> saved, Map<String, Parameter> model) {
        double d = 0;
        for (Map.Entry<String, Parameter> e : model.entrySet()) {
            d = Math.max(d, saved.get(e.getKey()).sub(e.getValue().data()).amaxNumber().doubleValue());
        }
        return d;
    }

    @ParameterizedTest
    @CsvSource({"loss, min, 3", "ppl, max, 2", "ppl, min, 1"})
    void topKKeepsExactlyTheBestKUnderCoLLiEsNamesAndLast(String key, String mode, int k, @TempDir Path tmp)
            throws IOException {
        TrackedMetric metric = new TrackedMetric(key, TrackedMetric.Mode.parse("mode", mode));
        CheckpointCallback cb = CheckpointCallback.builder(tmp).topK(k, metric).last(true).build();
        Run r = run(cb);
        List<LossHistory.Eval> evals = r.history().evals();
        assertEquals(12, evals.size());
        Comparator<LossHistory.Eval> better = Comparator.comparingDouble(e -> result(e, key));
        List<LossHistory.Eval> best = evals.stream().sorted(metric.mode() == TrackedMetric.Mode.MIN ? better
                : better.reversed()).limit(k).toList();
        Set<String> expected = new TreeSet<>();
        best.forEach(e -> expected.add(topKName(e.step(), key, result(e, key))));
        assertEquals(expected, new TreeSet<>(cb.topKFolders()));
        expected.add("last");
        assertEquals(expected, folders(tmp));
        for (LossHistory.Eval e : best) {
            assertEquals(e.step(), stepOf(tmp.resolve(topKName(e.step(), key, result(e, key)))));
        }
        assertEquals(12, stepOf(tmp.resolve("last")));
        if (k > 1) {   // the run evicted checkpoints: the best are neither the first k nor the last k evaluated
            Set<Long> steps = best.stream().map(LossHistory.Eval::step).collect(Collectors.toSet());
            assertNotEquals(List.of(1L, 2L, 3L).stream().limit(k).collect(Collectors.toSet()), steps);
            assertNotEquals(List.of(12L, 11L, 10L).stream().limit(k).collect(Collectors.toSet()), steps);
        }
    }

    @Test
    void foldersCarryTheValueAsPythonPrintsIt() {
        assertEquals("3.4709123", CheckpointCallback.pythonFloat(3.4709123));
        assertEquals("2.0", CheckpointCallback.pythonFloat(2.0));
        assertEquals("100.0", CheckpointCallback.pythonFloat(100.0));
        assertEquals("-0.5", CheckpointCallback.pythonFloat(-0.5));
        assertEquals("0.0001", CheckpointCallback.pythonFloat(1e-4));
        assertEquals("1e-05", CheckpointCallback.pythonFloat(1e-5));
        assertEquals("1.2345e-06", CheckpointCallback.pythonFloat(12.345e-7));
        assertEquals("1234567890123456.8", CheckpointCallback.pythonFloat(1234567890123456.7));
        assertEquals("1e+16", CheckpointCallback.pythonFloat(1e16));
        assertEquals("1.7976931348623157e+308", CheckpointCallback.pythonFloat(Double.MAX_VALUE));
        assertEquals("0.30000000000000004", CheckpointCallback.pythonFloat(0.1 + 0.2));
    }

    @Test
    void everyNEpochsWritesEpochFoldersAndStepsKeepTheNewest(@TempDir Path tmp) throws IOException {
        run(CheckpointCallback.builder(tmp).everyNEpochs(1).everyNSteps(5).keep(2).build());
        assertEquals(Set.of("epoch_0", "epoch_1", "epoch_2", "step_10", "step_12"), folders(tmp));
        assertEquals(8, stepOf(tmp.resolve("epoch_1")));
        Path two = tmp.resolve("two");
        run(CheckpointCallback.builder(two).everyNEpochs(2).build());
        assertEquals(Set.of("epoch_1"), folders(two));
    }

    @Test
    void loadBestPutsTheBestEvaluationsWeightsBackAtTheEnd(@TempDir Path tmp) throws IOException {
        LoadBestModelCallback best = new LoadBestModelCallback(tmp, TrackedMetric.min("loss"), false);
        Run r = run(CheckpointCallback.builder(tmp.resolve("ckpt")).last(true).build(), best);
        LossHistory.Eval min = r.history().evals().stream().min(Comparator.comparingDouble(LossHistory.Eval::loss))
                .orElseThrow();
        assertTrue(min.step() < 12, "the best evaluation is not the last: " + min);
        assertTrue(best.loaded());
        assertEquals(min.step(), best.bestStep());
        assertEquals(min.step(), stepOf(tmp.resolve("best")));
        assertEquals(0.0, maxAbsDiff(weights(tmp.resolve("best")), r.model().namedParameters()));
        // the trained weights (in last, written before the reload) are not the best
        assertTrue(maxAbsDiff(weights(tmp.resolve("ckpt/last")), r.model().namedParameters()) > 1e-6);
        assertEquals(r.history().evals().get((int) min.step() - 1).loss(), r.trainer().evaluate().get("loss"), 0.0);

        // by default the best is deleted once it is loaded
        Path other = tmp.resolve("other");
        Run again = run(new LoadBestModelCallback(other, TrackedMetric.min("loss")));
        assertFalse(Files.exists(other.resolve("best")));
        assertEquals(0.0, maxAbsDiff(weights(tmp.resolve("best")), again.model().namedParameters()));
    }

    /** The step early stopping must end on, from a whole run's evaluations; 0 when it never stops. */
    private static long expectedStop(List<LossHistory.Eval> evals, int patience, double minDelta) {
        double best = Double.NaN;
        int waited = 0;
        for (LossHistory.Eval e : evals) {
            if (Double.isNaN(best) || e.loss() < best - minDelta) {
                best = e.loss();
                waited = 0;
            } else if (++waited >= patience) {
                return e.step();
            }
        }
        return 0;
    }

    @ParameterizedTest
    @CsvSource({"3, 0", "6, 0", "2, 0.001", "7, 0"})
    void earlyStoppingEndsTheRunWhenPatienceRunsOut(int patience, double minDelta, @TempDir Path tmp)
            throws IOException {
        List<LossHistory.Eval> whole = run().history().evals();
        long stop = expectedStop(whole, patience, minDelta);
        Run r = run(CheckpointCallback.builder(tmp).last(true).build(),
                new EarlyStoppingCallback(TrackedMetric.min("loss"), patience, minDelta));
        if (stop == 0) {
            assertEquals(12, r.stats().size());
            assertFalse(r.trainer().stoppedEarly());
            return;
        }
        assertTrue(stop < 12);
        assertEquals(stop, r.stats().size());
        assertTrue(r.trainer().stoppedEarly());
        assertFalse(r.trainer().stopped());
        assertEquals(stop, stepOf(tmp.resolve("last")));         // the run ended normally after that step
    }

    /** The callbacks of one run of the resume test: each run gets new ones. */
    private static Callback[] resumable(Path dir) {
        return new Callback[] {
            CheckpointCallback.builder(dir).everyNSteps(3).keep(2).topK(2, TrackedMetric.min("loss")).last(true)
                    .build(),
            new LoadBestModelCallback(dir, TrackedMetric.min("loss"), false),
            new EarlyStoppingCallback(TrackedMetric.min("loss"), 6, 0)};
    }

    @Test
    void resumingWithTheseCallbacksGivesTheUninterruptedRun(@TempDir Path tmp) throws IOException {
        Path a = tmp.resolve("a");
        Callback[] straight = resumable(a);
        Run whole = run(straight);
        assertTrue(whole.trainer().stoppedEarly(), "the run is meant to stop early");

        Path b = tmp.resolve("b");
        List<Callback> killed = new ArrayList<>(List.of(resumable(b)));
        killed.add(new Callback() {
            @Override
            public void onStepEnd(Trainer t, long step) {
                if (step == 6) {
                    throw new IllegalStateException("killed");
                }
            }
        });
        assertThrows(IllegalStateException.class, () -> run(killed.toArray(Callback[]::new)));
        JsonNode state = JSON.readTree(b.resolve("step_6/trainer.json").toFile()).path("callbacks");
        assertEquals(4, state.path("EarlyStoppingCallback").path("waited").asInt(), state.toString());

        Callback[] again = resumable(b);
        Run rest = run(CONFIG, EVAL, b.resolve("step_6"), again);
        assertEquals(whole.stats().size(), 6 + rest.stats().size());
        for (int i = 0; i < rest.stats().size(); i++) {
            assertEquals(whole.stats().get(6 + i).loss(), rest.stats().get(i).loss(), 0.0, "loss of step " + (7 + i));
        }
        assertTrue(rest.trainer().stoppedEarly());
        assertEquals(((CheckpointCallback) straight[0]).topKFolders(), ((CheckpointCallback) again[0]).topKFolders());
        assertEquals(((LoadBestModelCallback) straight[1]).bestStep(), ((LoadBestModelCallback) again[1]).bestStep());
        assertEquals(folders(a), folders(b));
        whole.model().namedParameters().forEach((n, p) -> assertEquals(0.0,
                p.data().sub(rest.model().namedParameters().get(n).data()).amaxNumber().doubleValue(), n));
    }

    @Test
    void aWatchedKeyNoEvaluationReportsIsRefusedBeforeTheFirstStep(@TempDir Path tmp) {
        int[] steps = new int[1];
        Callback counter = new Callback() {
            @Override
            public void onBatchBegin(Trainer t, long step) {
                steps[0]++;
            }
        };
        Supplier<CheckpointCallback> topAcc = () -> CheckpointCallback.builder(tmp).topK(2, TrackedMetric.max("acc"))
                .build();
        String m = assertThrows(CollieException.class, () -> run(counter, topAcc.get())).getMessage();
        assertEquals("CheckpointCallback (top 2) watches 'acc', which the evaluation does not report; it reports:"
                + " loss, ppl", m);
        m = assertThrows(CollieException.class, () -> run(CONFIG, null, null, counter,
                new LoadBestModelCallback(tmp, TrackedMetric.min("loss")))).getMessage();
        assertTrue(m.startsWith("LoadBestModelCallback watches 'loss', but the Trainer has no evaluation data"), m);
        m = assertThrows(CollieException.class, () -> run(CONFIG.toBuilder().evalPerNSteps(0).build(), EVAL, null,
                counter, new EarlyStoppingCallback(TrackedMetric.min("ppl"), 2, 0))).getMessage();
        assertTrue(m.contains("eval_per_n_steps = 0: no evaluation runs during training"), m);
        m = assertThrows(CollieException.class, () -> run(CONFIG.toBuilder().evalPerNSteps(13).build(), EVAL, null,
                counter, new EarlyStoppingCallback(TrackedMetric.min("ppl"), 2, 0))).getMessage();
        assertTrue(m.contains("eval_per_n_steps = 13 leaves no evaluation within steps 1 to 12"), m);
        m = assertThrows(CollieException.class, () -> run(counter, new LoadBestModelCallback(tmp,
                TrackedMetric.min("loss")), CheckpointCallback.builder(tmp.resolve("c")).last(true).build()))
                .getMessage();
        assertTrue(m.startsWith("LoadBestModelCallback comes before a CheckpointCallback"), m);
        assertEquals(0, steps[0], "a step was taken");
    }

    @Test
    void settingsThatCannotWorkAreRefusedWhenMade(@TempDir Path tmp) {
        TrackedMetric loss = TrackedMetric.min("loss");
        assertThrows(CollieException.class, () -> CheckpointCallback.builder(tmp).topK(0, loss));
        assertThrows(CollieException.class, () -> CheckpointCallback.builder(tmp).topK(-2, loss));
        String m = assertThrows(CollieException.class, () -> CheckpointCallback.builder(tmp).build()).getMessage();
        assertTrue(m.endsWith("this checkpoint callback would write nothing: give every N steps, every N epochs,"
                + " last, or top-k"), m);
        assertThrows(CollieException.class, () -> new EarlyStoppingCallback(loss, 0, 0));
        assertThrows(CollieException.class, () -> new EarlyStoppingCallback(loss, 1, Double.NaN));
        assertThrows(CollieException.class, () -> new EarlyStoppingCallback(loss, 1, -0.1));
        assertThrows(CollieException.class, () -> new TrackedMetric("a/b", TrackedMetric.Mode.MIN));
        m = assertThrows(CollieException.class, () -> TrackedMetric.Mode.parse("--metric-mode", "lower"))
                .getMessage();
        assertEquals("--metric-mode 'lower': expected min (smaller is better) or max (larger is better)", m);
    }

    @Test
    void aCallbackStateWithANumberThatIsNotFiniteNeverReachesTheFile(@TempDir Path tmp) {
        ToyLanguageModel m = new ToyLanguageModel(VOCAB, 8, DataType.DOUBLE, 7);
        ObjectNode state = JsonNodeFactory.instance.objectNode();
        state.putArray("top_k").addObject().put("folder", "x").put("value", Double.NaN);
        Path dir = tmp.resolve("c");
        String msg = assertThrows(CollieException.class, () -> TrainingCheckpoint.save(dir, m.namedParameters(),
                new Sgd(m.namedParameters()), CONFIG, 1, 0, null, Map.of("CheckpointCallback", state))).getMessage();
        assertEquals(dir + ": callbacks.CheckpointCallback.top_k[0].value = NaN is not a finite number; a checkpoint"
                + " keeps finite numbers only", msg);
        assertFalse(Files.exists(dir));
    }
}
