package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.data.Dataset;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.Sample;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Sgd;
import dev.collie.core.testing.ToyLanguageModel;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A step with a non-finite loss or gradient norm is skipped and counted; too many in a row stop the run. */
class NonFiniteStepTest {
    private static final int VOCAB = 24;
    private static final Dataset ROWS = ToyLanguageModel.rows(8, 0, VOCAB, 5);

    /**
     * Poisons one weight element with {@code value} for the steps in {@code steps} (0-based) and restores it after,
     * recording every weight before and after each poisoned step.
     */
    private static final class Poison implements Callback {
        final Set<Long> steps;
        final double value;
        final Map<Long, Map<String, INDArray>> before = new HashMap<>();
        final Map<Long, Map<String, INDArray>> after = new HashMap<>();
        private double saved;

        Poison(double value, Long... steps) {
            this.value = value;
            this.steps = Set.of(steps);
        }

        private static Map<String, INDArray> snapshot(Trainer t) {
            Map<String, INDArray> m = new HashMap<>();
            t.model().module().namedParameters().forEach((k, p) -> m.put(k, p.data().dup()));
            return m;
        }

        private static INDArray first(Trainer t) {
            return t.model().module().namedParameters().values().iterator().next().data();
        }

        @Override
        public void onBatchBegin(Trainer t, long step) {
            if (steps.contains(step)) {
                before.put(step, snapshot(t));
                saved = first(t).getDouble(0);
                first(t).putScalar(0, value);
            }
        }

        @Override
        public void onBatchEnd(Trainer t, StepStats s) {
            long step = s.step() - 1;
            if (steps.contains(step)) {
                first(t).putScalar(0, saved);
                after.put(step, snapshot(t));
            }
        }
    }

    private static Trainer trainer(ToyLanguageModel m, CollieConfig c, Dataset data, Callback... cbs) {
        return Trainer.builder().model(m).optimizer(new Sgd(m.namedParameters())).config(c).trainData(data)
                .callbacks(cbs).build();
    }

    private static CollieConfig config() {
        return CollieConfig.builder().shuffle(false).lr(0.5).trainMicroBatchSize(2).build();
    }

    @Test
    void aNonFiniteLossSkipsTheUpdateAndCountsIt() {
        for (double bad : new double[] {Double.NaN, Double.POSITIVE_INFINITY}) {
            ToyLanguageModel m = new ToyLanguageModel(VOCAB, 8, DataType.DOUBLE, 7);
            Poison poison = new Poison(bad, 1L, 2L);
            Trainer t = trainer(m, config(), ROWS, poison);
            List<StepStats> stats = t.train();
            assertEquals(4, stats.size());
            assertEquals(List.of(false, true, true, false), stats.stream().map(StepStats::skipped).toList(), "" + bad);
            assertEquals(2, t.nonFiniteSteps());
            for (long step : poison.steps) {
                poison.before.get(step).forEach((k, w) -> assertEquals(w, poison.after.get(step).get(k),
                        "step " + step + " left " + k + " as it was (" + bad + ")"));
            }
            assertTrue(Double.isFinite(stats.get(3).loss()), "the run goes on after the skipped steps");
            m.namedParameters().values().forEach(p -> assertTrue(Double.isFinite(p.data().sumNumber().doubleValue())));
        }
    }

    @Test
    void maxNonFiniteStepsInARowStopTheRunNamingTheLimit() {
        ToyLanguageModel m = new ToyLanguageModel(VOCAB, 8, DataType.DOUBLE, 7);
        Trainer t = trainer(m, config().toBuilder().maxNonFiniteSteps(3).build(), ROWS,
                new Poison(Double.NaN, 0L, 1L, 2L));
        CollieException e = assertThrows(CollieException.class, t::train);
        assertTrue(e.getMessage().contains("3 consecutive steps") && e.getMessage().contains("max_nonfinite_steps = 3")
                && e.getMessage().contains("step 3"), e.getMessage());

        // the same faults with a limit of 4 (and a finite step in between resetting the count with 3) pass
        ToyLanguageModel m2 = new ToyLanguageModel(VOCAB, 8, DataType.DOUBLE, 7);
        Trainer t2 = trainer(m2, config().toBuilder().maxNonFiniteSteps(4).build(), ROWS,
                new Poison(Double.NaN, 0L, 1L, 2L));
        assertEquals(4, t2.train().size());
        assertEquals(3, t2.nonFiniteSteps());
        ToyLanguageModel m3 = new ToyLanguageModel(VOCAB, 8, DataType.DOUBLE, 7);
        Trainer t3 = trainer(m3, config(), ROWS, new Poison(Double.NaN, 0L, 1L, 3L));
        assertEquals(4, t3.train().size());
    }

    @Test
    void maxNonFiniteStepsMustBePositive() {
        CollieException e = assertThrows(CollieException.class,
                () -> CollieConfig.builder().maxNonFiniteSteps(0).build().validate());
        assertTrue(e.getMessage().contains("max_nonfinite_steps"), e.getMessage());
    }

    @Test
    void dataWithoutATokenForTheLossIsRefusedBeforeTraining() {
        List<Sample> none = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            // only the first label is set, and it is never predicted
            none.add(new Sample(new int[] {1, 2, 3}, new int[] {2, Sample.IGNORE_INDEX, Sample.IGNORE_INDEX}));
        }
        ToyLanguageModel m = new ToyLanguageModel(VOCAB, 8, DataType.DOUBLE, 7);
        CollieException e = assertThrows(CollieException.class, () -> trainer(m, config(), Datasets.of(none)));
        assertTrue(e.getMessage().contains("none of its 4 samples"), e.getMessage());

        List<Sample> some = new ArrayList<>(none);
        some.add(Sample.causal(new int[] {1, 2, 3}));
        assertFalse(trainer(m, config(), Datasets.of(some)).train().isEmpty(), "some samples carry a loss: trains");
    }
}
