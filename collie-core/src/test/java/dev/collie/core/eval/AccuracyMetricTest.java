package dev.collie.core.eval;

import com.fasterxml.jackson.databind.JsonNode;
import dev.collie.core.testing.MetricFixtures;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AccuracyMetricTest {
    /** The classification fixture as a [4, 10] batch: 23 of 34 counted tokens right, one of four rows. */
    @Test
    void tokenAndSequenceAccuracyWithAMask() {
        JsonNode f = MetricFixtures.classification();
        INDArray pred = Nd4j.createFromArray(MetricFixtures.ints(f.get("pred"))).reshape(4, 10);
        INDArray target = Nd4j.createFromArray(MetricFixtures.ints(f.get("target"))).reshape(4, 10);
        INDArray mask = Nd4j.createFromArray(MetricFixtures.ints(f.get("mask"))).reshape(4, 10);
        AccuracyMetric m = new AccuracyMetric();
        m.update(EvalBatch.ofLabels(pred, target, mask));
        assertEquals(f.get("accuracy").asDouble(), m.get().get("accuracy"), 1e-15);
        assertEquals(f.get("sequence-accuracy").asDouble(), m.get().get("sequence-accuracy"), 1e-15);
        m.reset();
        m.update(EvalBatch.ofLabels(pred, target, null));
        assertTrue(m.get().get("accuracy") < f.get("accuracy").asDouble(), "the masked positions are wrong ones");
        assertEquals(0.0, m.get().get("sequence-accuracy"), "unmasked, the last row is wrong too");
    }

    @Test
    void logitsAreReducedToTheirArgmax() {
        // [B=2, T=3, V=4]; the second row's last position is padding (mask 0), the first's second is ignored (-100)
        INDArray logits = Nd4j.zeros(DataType.FLOAT, 2, 3, 4);
        long[][] best = {{2, 0, 1}, {3, 3, 0}};
        for (int b = 0; b < 2; b++) {
            for (int t = 0; t < 3; t++) {
                logits.putScalar(new long[] {b, t, best[b][t]}, 5f);
            }
        }
        INDArray target = Nd4j.createFromArray(new long[][] {{2, -100, 1}, {3, 1, 2}});
        INDArray mask = Nd4j.createFromArray(new long[][] {{1, 1, 1}, {1, 1, 0}});
        AccuracyMetric m = new AccuracyMetric();
        m.update(EvalBatch.ofLabels(logits, target, mask));
        Map<String, Double> v = m.get();
        assertEquals(3.0 / 4, v.get("accuracy"), 1e-15);
        assertEquals(0.5, v.get("sequence-accuracy"), 1e-15);
    }

    @Test
    void mismatchedShapesAreExplained() {
        INDArray target = Nd4j.createFromArray(new long[][] {{1, 2}});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> EvalBatch.ofLabels(
                Nd4j.createFromArray(new long[][] {{1, 2, 3}}), target, null));
        assertEquals("predicted LONG [1, 3] does not match target LONG [1, 2]", e.getMessage());
        IllegalArgumentException f = assertThrows(IllegalArgumentException.class, () -> EvalBatch.ofLabels(
                Nd4j.createFromArray(new float[][] {{1, 2}}), target, null));
        assertTrue(f.getMessage().startsWith("predicted has target's rank, so it must hold integer ids, got FLOAT"),
                f.getMessage());
        assertTrue(Double.isNaN(new AccuracyMetric().get().get("accuracy")), "nothing counted: NaN");
    }
}
