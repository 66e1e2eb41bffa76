package dev.collie.core.nn;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Attention with learned key/value prefixes (prefix tuning): float64 finite differences; same as a KV cache. */
class PrefixAttentionGradientTest {
    private static final DataType D = DataType.DOUBLE;

    @BeforeAll
    static void seed() {
        Nd4j.getRandom().setSeed(11);
    }

    /** Prefix keys and values held as parameters, gradients delivered through the one door. */
    private static final class ParamPrefix implements Attention.Prefix {
        final Parameter keys;
        final Parameter values;
        int deliveries;

        ParamPrefix(int b, int kvHeads, int n, int headDim) {
            keys = new Parameter(Nd4j.randn(D, b, kvHeads, n, headDim));
            values = new Parameter(Nd4j.randn(D, b, kvHeads, n, headDim));
        }

        @Override
        public int length() {
            return (int) keys.shape()[2];
        }

        @Override
        public INDArray[] keysValues(Tape tape, Attention attention) {
            tape.use(keys);
            tape.use(values);
            return new INDArray[] {keys.data(), values.data()};
        }

        @Override
        public void backward(Tape tape, Attention attention, INDArray dKeys, INDArray dValues) {
            deliveries++;
            keys.accumulateGrad(tape, dKeys.dup());
            values.accumulateGrad(tape, dValues.dup());
        }

        Map<String, Parameter> params() {
            Map<String, Parameter> m = new LinkedHashMap<>();
            m.put("prefix.keys", keys);
            m.put("prefix.values", values);
            return m;
        }
    }

    private static Map<String, Parameter> all(Attention a, ParamPrefix p) {
        Map<String, Parameter> m = new LinkedHashMap<>(a.namedParameters());
        m.putAll(p.params());
        return m;
    }

    @Test
    void groupedQueryAttentionWithPrefixMatchesFiniteDifferences() {
        RotaryEmbedding rope = new RotaryEmbedding(new double[] {1.0, 0.1});
        Attention a = new Attention(8, 4, 2, 4, false, rope, D, 0.4);
        ParamPrefix p = new ParamPrefix(2, 2, 3, 4);
        GradCheck.TapeFactory f = training -> (training ? Tape.forTraining(2, 5) : Tape.forInference(2, 5))
                .setAttentionPrefix(p);
        GradCheck.check(a, all(a, p), Nd4j.randn(D, 2 * 5, 8), f, 21);
        assertEquals(1, p.deliveries);
    }

    @Test
    void prefixWithPaddingMaskMatchesFiniteDifferences() {
        RotaryEmbedding rope = new RotaryEmbedding(new double[] {1.0, 0.3, 0.01});
        Attention a = new Attention(6, 2, 2, 6, true, rope, D, 0.4);
        ParamPrefix p = new ParamPrefix(2, 2, 2, 6);
        // the mask covers the prefix (always visible) and the real tokens
        INDArray mask = Nd4j.createFromArray(new long[][] {{1, 1, 1, 1, 1, 0}, {1, 1, 0, 1, 1, 1}});
        GradCheck.TapeFactory f = training -> (training ? Tape.forTraining(2, 4) : Tape.forInference(2, 4))
                .setAttentionPrefix(p).setAttentionMask(mask);
        GradCheck.check(a, all(a, p), Nd4j.randn(D, 8, 6), f, 22);
    }

    @Test
    void checkpointedAttentionWithPrefixGivesTheSameGradients() {
        RotaryEmbedding rope = new RotaryEmbedding(new double[] {1.0, 0.1});
        Attention a = new Attention(8, 4, 2, 4, false, rope, D, 0.4);
        ParamPrefix p = new ParamPrefix(1, 2, 3, 4);
        Checkpointed c = new Checkpointed(a);
        GradCheck.TapeFactory f = training -> (training ? Tape.forTraining(1, 4) : Tape.forInference(1, 4))
                .setAttentionPrefix(p);
        GradCheck.check(c, all(a, p), Nd4j.randn(D, 4, 8), f, 23);
        assertEquals(1, p.deliveries);
    }

    @Test
    void prefixActsAsPastKeysAndValuesInTheCache() {
        RotaryEmbedding rope = new RotaryEmbedding(new double[] {1.0, 0.1});
        Attention a = new Attention(8, 4, 2, 4, false, rope, D, 0.4);
        ParamPrefix p = new ParamPrefix(1, 2, 3, 4);
        INDArray x = Nd4j.randn(D, 5, 8);
        INDArray withPrefix = a.forward(Tape.forInference(1, 5).setAttentionPrefix(p), x);
        KvCache cache = new KvCache();
        cache.append(a, p.keys.data(), p.values.data());
        cache.advance(3);
        INDArray withCache = a.forward(Tape.forInference(1, 5).setKvCache(cache), x);
        assertTrue(withPrefix.equalsWithEps(withCache, 1e-12));
        assertEquals(3, Tape.forInference(1, 5).setAttentionPrefix(p).pastLength());
    }

    @Test
    void aPrefixAndAKvCacheOnOneTapeAreRefused() {
        RotaryEmbedding rope = new RotaryEmbedding(new double[] {1.0, 0.1});
        Attention a = new Attention(8, 4, 2, 4, false, rope, D, 0.4);
        ParamPrefix p = new ParamPrefix(1, 2, 3, 4);
        Tape t = Tape.forInference(1, 2).setKvCache(new KvCache()).setAttentionPrefix(p);
        assertThrows(IllegalStateException.class, () -> a.forward(t, Nd4j.randn(D, 2, 8)));
    }
}
