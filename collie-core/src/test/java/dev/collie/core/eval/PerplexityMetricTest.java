package dev.collie.core.eval;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PerplexityMetricTest {
    /** Two batches, 3 tokens with summed loss 6 and 1 token with loss 0: exp(6/4), not the mean of e^2 and e^0. */
    @Test
    void perplexityIsExpOfTheMeanLossPerToken() {
        PerplexityMetric m = new PerplexityMetric();
        m.update(EvalBatch.ofLoss(6.0, 3));
        m.update(EvalBatch.ofLoss(0.0, 1));
        Map<String, Double> v = m.get();
        assertEquals(1.5, v.get("loss"), 1e-15);
        assertEquals(Math.exp(1.5), v.get("perplexity"), 1e-12);
        m.reset();
        assertTrue(Double.isNaN(m.get().get("perplexity")), "no tokens: NaN");
    }

    @Test
    void negativeTokenCountsAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> EvalBatch.ofLoss(1.0, -1));
        assertEquals("a loss's token count must be >= 0, got -1", e.getMessage());
    }
}
