package dev.collie.core.eval;

import com.fasterxml.jackson.databind.JsonNode;
import dev.collie.core.CollieException;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.MetricFixtures;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static dev.collie.core.testing.MetricFixtures.PARITY;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ClassificationMetricTest {
    private static final String[] KEYS = {"precision-micro", "recall-micro", "f1-micro", "precision-macro",
        "recall-macro", "f1-macro"};

    /** Against the definition computed in make_metric_fixtures.py, fed as four batches of ten with the mask. */
    @Test
    void matchesTheDefinition() {
        JsonNode f = MetricFixtures.classification();
        int[] pred = MetricFixtures.ints(f.get("pred"));
        int[] target = MetricFixtures.ints(f.get("target"));
        int[] mask = MetricFixtures.ints(f.get("mask"));
        ClassificationMetric m = new ClassificationMetric();
        for (int b = 0; b < 4; b++) {
            m.update(EvalBatch.ofLabels(slice(pred, b), slice(target, b), slice(mask, b)));
        }
        Map<String, Double> got = m.get();
        assertEquals(List.of(KEYS), List.copyOf(got.keySet()));
        double worst = 0;
        for (String k : KEYS) {
            worst = Math.max(worst, Math.abs(got.get(k) - f.get(k).asDouble()));
        }
        Agreement.within("precision/recall/F1 micro and macro vs the definition", worst, PARITY);
        assertTrue(Math.abs(got.get("f1-macro") - got.get("f1-micro")) > 0.1, "the fixture separates macro from micro");
    }

    @Test
    void scoresAreReducedToTheirArgmaxAndIgnoredTargetsSkipped() {
        INDArray scores = Nd4j.createFromArray(new double[][] {{0.1, 0.9}, {0.8, 0.2}, {0.3, 0.7}});
        INDArray target = Nd4j.createFromArray(new long[] {1, 1, -100});
        ClassificationMetric m = new ClassificationMetric();
        m.update(EvalBatch.ofLabels(scores, target, null));
        // counted: (pred 1, true 1), (pred 0, true 1): class 0 P 0 R 0; class 1 P 1 R 0.5 F 2/3
        Map<String, Double> v = m.get();
        assertEquals(0.5, v.get("precision-macro"), 1e-15);
        assertEquals(0.25, v.get("recall-macro"), 1e-15);
        assertEquals(1.0 / 3, v.get("f1-macro"), 1e-15);
        assertEquals(0.5, v.get("f1-micro"), 1e-15);
    }

    @Test
    void negativeClassIdsAndEmptyBatchesAreExplained() {
        ClassificationMetric m = new ClassificationMetric();
        assertTrue(Double.isNaN(m.get().get("f1-macro")), "no class seen: NaN");
        CollieException e = assertThrows(CollieException.class, () -> m.update(EvalBatch.ofLabels(
                Nd4j.createFromArray(new int[] {-3}), Nd4j.createFromArray(new int[] {1}), null)));
        assertEquals("metric 'f1': a predicted class id must be >= 0 (the ignore index aside), got -3", e.getMessage());
        CollieException loss = assertThrows(CollieException.class, () -> m.update(EvalBatch.ofLoss(1, 1)));
        assertEquals("metric 'f1' needs labels (predicted and true ids); this batch has only a loss", loss.getMessage());
    }

    /** Row {@code b} of ten of {@code values} as a [1, 10] INT32 array. */
    static INDArray slice(int[] values, int b) {
        int[] row = Arrays.copyOfRange(values, 10 * b, 10 * b + 10);
        return Nd4j.createFromArray(new int[][] {row}).castTo(DataType.INT32);
    }
}
