package dev.collie.core.eval;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

class MetricRegistryTest {
    @Test
    void builtInsAreFoundByNameAndAWrongNameListsThem() {
        MetricRegistry r = MetricRegistry.withBuiltIns();
        assertEquals(List.of("accuracy", "bleu", "decode", "f1", "perplexity", "rouge"), r.names());
        assertInstanceOf(BleuMetric.class, r.create(" BLEU "));
        assertNotSame(r.create("rouge"), r.create("rouge"));
        CollieException e = assertThrows(CollieException.class, () -> r.create("blue"));
        assertEquals("unknown metric 'blue'; known: accuracy, bleu, decode, f1, perplexity, rouge", e.getMessage());
    }

    /** A user's metric: the count of predictions, registered beside the built-ins. */
    @Test
    void usersRegisterTheirOwn() {
        MetricRegistry r = MetricRegistry.withBuiltIns().register("count", Count::new);
        Metric m = r.create("count");
        m.update(EvalBatch.ofTexts(List.of("a", "b"), null));
        assertEquals(Map.of("count", 2.0), m.get());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> r.register("Count", Count::new));
        assertEquals("a metric named 'count' is already registered", e.getMessage());
    }

    private static final class Count implements Metric {
        private long n;

        @Override public void update(EvalBatch batch) { n += batch.texts("count").predictions().size(); }
        @Override public Map<String, Double> get() { return Map.of("count", (double) n); }
        @Override public void reset() { n = 0; }
        @Override public void gather(Communicator group) { n = (long) Collectives.sum(group, new double[] {n})[0]; }
    }
}
