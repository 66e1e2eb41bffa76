package dev.collie.core.nn;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Float64 finite-difference checks of every layer's backward. */
class LayerGradientTest {
    private static final DataType D = DataType.DOUBLE;

    @BeforeAll
    static void seed() {
        Nd4j.getRandom().setSeed(7);
    }

    private static GradCheck.TapeFactory tapes(int b, int t) {
        return training -> training ? Tape.forTraining(b, t) : Tape.forInference(b, t);
    }

    private static void perturb(Module m) {
        for (Parameter p : m.parameters()) {
            p.data().addi(Nd4j.randn(D, p.shape()).muli(0.3));
        }
    }

    @Test
    void linearBackwardMatchesFiniteDifferences() {
        Linear l = new Linear(5, 3, true, D, 0.5);
        perturb(l);
        GradCheck.check(l, l.namedParameters(), Nd4j.randn(D, 4, 5), tapes(1, 4), 1);
    }

    @Test
    void embeddingBackwardMatchesFiniteDifferencesWithRepeatedIds() {
        Embedding e = new Embedding(7, 4, D, 0.5);
        INDArray ids = Nd4j.createFromArray(new long[][] {{1, 3, 3}, {6, 1, 0}});
        GradCheck.check(e, e.namedParameters(), ids, tapes(2, 3), 2);
    }

    @Test
    void rmsNormBackwardMatchesFiniteDifferences() {
        RMSNorm n = new RMSNorm(6, 1e-5, D);
        perturb(n);
        GradCheck.check(n, n.namedParameters(), Nd4j.randn(D, 5, 6), tapes(1, 5), 3);
    }

    @Test
    void swiGluMlpBackwardMatchesFiniteDifferences() {
        SwiGluMlp m = new SwiGluMlp(6, 10, false, D, 0.4);
        GradCheck.check(m, m.namedParameters(), Nd4j.randn(D, 4, 6), tapes(1, 4), 4);
    }

    @Test
    void fusedGateUpSwiGluBackwardMatchesFiniteDifferences() {
        SwiGluMlp m = new SwiGluMlp(SwiGluMlp.Names.fused("dense_h_to_4h", "dense_4h_to_h"), 6, 10, false, D, 0.4);
        assertEquals(java.util.Set.of("dense_h_to_4h.weight", "dense_4h_to_h.weight"), m.namedParameters().keySet());
        GradCheck.check(m, m.namedParameters(), Nd4j.randn(D, 4, 6), tapes(1, 4), 14);
    }

    @Test
    void halfHeadInterleavedRotaryAttentionMatchesFiniteDifferences() {
        // ChatGLM's: the first half of each head of 8 turns in pairs (0,1), (2,3); dimensions 4..7 pass through
        RotaryEmbedding rope = new RotaryEmbedding(n -> new double[] {1.0, 0.1}, 64,
                dev.collie.core.tensor.RotaryPairs.INTERLEAVED, 8);
        Attention.Options o = new Attention.Options(true, false, 0, 0,
                new Attention.Projections("query_key_value", Attention.QkvLayout.SECTIONED, "dense"));
        Attention a = new Attention(8, 2, 1, 8, o, rope, D, 0.4);
        perturb(a);
        GradCheck.check(a, a.namedParameters(), Nd4j.randn(D, 2 * 4, 8), tapes(2, 4), 15);
    }

    @Test
    void layerNormBackwardMatchesFiniteDifferences() {
        LayerNorm n = new LayerNorm(6, 1e-5, D);
        perturb(n);
        assertEquals(java.util.Set.of("weight", "bias"), n.namedParameters().keySet());
        GradCheck.check(n, n.namedParameters(), Nd4j.randn(D, 5, 6).addi(0.7), tapes(1, 5), 16);
    }

    @Test
    void layerNormNormalisesEachRowToItsWeightAndBias() {
        LayerNorm n = new LayerNorm(4, 0, D);
        n.weight().data().assign(Nd4j.createFromArray(1.0, 2.0, 1.0, 1.0));
        n.bias().data().assign(Nd4j.createFromArray(0.0, 0.0, 0.5, 0.0));
        INDArray y = n.forward(Tape.forInference(1, 1), Nd4j.createFromArray(new double[][] {{1, 2, 3, 6}}));
        // mean 3, biased variance 3.5
        double s = Math.sqrt(3.5);
        assertEquals(Nd4j.createFromArray(new double[][] {{-2 / s, -2 / s, 0.5, 3 / s}}), y);
    }

    @Test
    void geluMlpBackwardMatchesFiniteDifferences() {
        GeluMlp m = new GeluMlp(GeluMlp.Names.CODEGEN, 6, 10, true, D, 0.6);
        perturb(m);
        assertEquals(java.util.Set.of("fc_in.weight", "fc_in.bias", "fc_out.weight", "fc_out.bias"),
                m.namedParameters().keySet());
        GradCheck.check(m, m.namedParameters(), Nd4j.randn(D, 4, 6).muli(1.5), tapes(1, 4), 17);
    }

    @Test
    void geluIsTheTanhApproximationOfGeluNew() {
        INDArray y = dev.collie.core.tensor.Kernels.get().geluTanh(Nd4j.createFromArray(-3.0, -1.0, 0.5, 2.0));
        // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))); the exact (erf) GELU of -1 is -0.158655
        double[] want = {-0.0036373920817729943, -0.15880800939172324, 0.34571400982514394, 1.954597694087775};
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], y.getDouble(i), 1e-15);
        }
    }

    /** CodeGen's qkv_proj: 4 groups, each [queries | values | keys] of heads/4 heads. */
    private static Attention.Projections codeGenProjections() {
        return new Attention.Projections("qkv_proj", new Attention.QkvLayout(4, java.util.List.of(
                Attention.QkvLayout.Part.QUERY, Attention.QkvLayout.Part.VALUE, Attention.QkvLayout.Part.KEY)),
                "out_proj");
    }

    @Test
    void fusedQkvInFourGroupsOfQueryValueKeyWithPartialRotaryMatchesFiniteDifferences() {
        // 8 heads of 6, the first 4 dimensions of each turning in interleaved pairs; 2 heads per group
        RotaryEmbedding rope = new RotaryEmbedding(n -> new double[] {1.0, 0.1}, 64,
                dev.collie.core.tensor.RotaryPairs.INTERLEAVED, 6);
        Attention a = new Attention(12, 8, 8, 6, new Attention.Options(false, false, 0, 0, codeGenProjections()),
                rope, D, 0.4);
        perturb(a);
        assertEquals(java.util.Set.of("qkv_proj.weight", "out_proj.weight"), a.namedParameters().keySet());
        GradCheck.check(a, a.namedParameters(), Nd4j.randn(D, 2 * 4, 12), tapes(2, 4), 18);
    }

    @Test
    void fusedQkvInGroupsReadsEachHeadWhereItsLayoutPutsIt() {
        RotaryEmbedding rope = new RotaryEmbedding(n -> new double[] {1.0, 0.1}, 64,
                dev.collie.core.tensor.RotaryPairs.INTERLEAVED, 6);
        Attention separate = new Attention(12, 8, 8, 6, Attention.Options.bias(false), rope, D, 0.4);
        Attention fused = new Attention(12, 8, 8, 6, new Attention.Options(false, false, 0, 0, codeGenProjections()),
                rope, D, 0.4);
        // group m = [q heads 2m, 2m+1 | v heads 2m, 2m+1 | k heads 2m, 2m+1], 12 rows per part
        INDArray[] parts = new INDArray[3];
        String[] names = {"q_proj.weight", "v_proj.weight", "k_proj.weight"};
        INDArray w = fused.namedParameters().get("qkv_proj.weight").data();
        for (int m = 0; m < 4; m++) {
            for (int p = 0; p < 3; p++) {
                parts[p] = separate.namedParameters().get(names[p]).data()
                        .get(org.nd4j.linalg.indexing.NDArrayIndex.interval(12 * m, 12 * m + 12),
                                org.nd4j.linalg.indexing.NDArrayIndex.all());
                w.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(36 * m + 12 * p, 36 * m + 12 * p + 12),
                        org.nd4j.linalg.indexing.NDArrayIndex.all()).assign(parts[p]);
            }
        }
        fused.namedParameters().get("out_proj.weight").data()
                .assign(separate.namedParameters().get("o_proj.weight").data());
        INDArray x = Nd4j.randn(D, 2 * 4, 12);
        INDArray want = separate.forward(Tape.forInference(2, 4), x);
        assertEquals(0, want.sub(fused.forward(Tape.forInference(2, 4), x)).amaxNumber().doubleValue(), 1e-12);
    }

    @Test
    void groupedQueryAttentionBackwardMatchesFiniteDifferences() {
        RotaryEmbedding rope = new RotaryEmbedding(new double[] {1.0, 0.1});
        Attention a = new Attention(8, 4, 2, 4, false, rope, D, 0.4);
        GradCheck.check(a, a.namedParameters(), Nd4j.randn(D, 2 * 5, 8), tapes(2, 5), 5);
    }

    @Test
    void multiHeadAttentionWithBiasAndPaddingMaskMatchesFiniteDifferences() {
        RotaryEmbedding rope = new RotaryEmbedding(new double[] {1.0, 0.3, 0.01});
        Attention a = new Attention(6, 2, 2, 6, true, rope, D, 0.4);
        perturb(a);
        INDArray mask = Nd4j.createFromArray(new long[][] {{1, 1, 1, 0}, {0, 1, 1, 1}});
        GradCheck.TapeFactory f = training -> (training ? Tape.forTraining(2, 4) : Tape.forInference(2, 4))
                .setAttentionMask(mask);
        GradCheck.check(a, a.namedParameters(), Nd4j.randn(D, 8, 6), f, 6);
    }

    @Test
    void fusedGroupedQkvWithSlidingWindowAndBiasMatchesFiniteDifferences() {
        RotaryEmbedding rope = new RotaryEmbedding(new double[] {1.0, 0.1});
        Attention.Options o = new Attention.Options(true, true, 0, 3,
                new Attention.Projections("wqkv", Attention.QkvLayout.GROUPED, "wo"));
        Attention a = new Attention(8, 4, 2, 4, o, rope, D, 0.4);
        perturb(a);
        GradCheck.check(a, a.namedParameters(), Nd4j.randn(D, 2 * 5, 8), tapes(2, 5), 11);
    }

    @Test
    void fusedSectionedQkvWithQkvBiasAndPaddingMatchesFiniteDifferences() {
        RotaryEmbedding rope = new RotaryEmbedding(new double[] {1.0, 0.1});
        Attention.Options o = new Attention.Options(true, false, 0, 0,
                new Attention.Projections("query_key_value", Attention.QkvLayout.SECTIONED, "dense"));
        Attention a = new Attention(8, 4, 1, 4, o, rope, D, 0.4);
        perturb(a);
        INDArray mask = Nd4j.createFromArray(new long[][] {{1, 1, 1, 0}, {0, 1, 1, 1}});
        GradCheck.TapeFactory f = training -> (training ? Tape.forTraining(2, 4) : Tape.forInference(2, 4))
                .setAttentionMask(mask);
        GradCheck.check(a, a.namedParameters(), Nd4j.randn(D, 8, 8), f, 12);
    }

    @Test
    void perHeadQkNormMatchesFiniteDifferences() {
        RotaryEmbedding rope = new RotaryEmbedding(new double[] {1.0, 0.1});
        Attention a = new Attention(8, 4, 2, 4, new Attention.Options(false, false, 1e-6, 0,
                Attention.Projections.SEPARATE), rope, D, 0.4);
        perturb(a);
        assertEquals(java.util.Set.of("q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight",
                "q_norm.weight", "k_norm.weight"), a.namedParameters().keySet());
        GradCheck.check(a, a.namedParameters(), Nd4j.randn(D, 2 * 5, 8), tapes(2, 5), 13);
    }

    @Test
    void dynamicRopeGrowsItsBaseOnlyPastTheTrainedLength() {
        double[][] asked = new double[1][];
        RotaryEmbedding rope = new RotaryEmbedding(n -> {
            asked[0] = new double[] {n};
            return new double[] {1.0 / n, 0.1 / n};
        }, 4);
        INDArray x = Nd4j.randn(D, 3, 4);
        rope.apply(x, rope.tables(Tape.forInference(1, 3), 1, D), 1);
        assertEquals(4, asked[0][0]);       // built once, at the trained length
        rope.apply(Nd4j.randn(D, 6, 4), rope.tables(Tape.forInference(1, 6), 1, D), 1);
        assertEquals(6, asked[0][0]);
    }

    @Test
    void checkpointedBlockGivesTheSameGradientsAndFiresHooksOnce() {
        SwiGluMlp m = new SwiGluMlp(5, 7, false, D, 0.4);
        Checkpointed c = new Checkpointed(m);
        int[] fired = new int[1];
        m.parameters().forEach(p -> p.setHook((q, g) -> {
            fired[0]++;
            return true;
        }));
        GradCheck.check(c, m.namedParameters(), Nd4j.randn(D, 3, 5), tapes(1, 3), 7);
        assertEquals(3, fired[0]);
    }

    @Test
    void causalLmLossBackwardMatchesFiniteDifferences() {
        CausalLmLoss loss = new CausalLmLoss();
        INDArray logits = Nd4j.randn(D, 2 * 4, 5);
        INDArray labels = Nd4j.createFromArray(new long[][] {{1, 2, -100, 4}, {0, -100, 3, 3}});
        GradCheck.check(t -> Nd4j.scalar(D, loss.forward(t, logits.dup(), labels)).reshape(1),
                (t, dy) -> loss.backward(t, dy.getDouble(0)), Map.of(), logits, tapes(2, 4), 8);
    }

    @Test
    void causalLmLossIsMeanNegativeLogLikelihoodOfShiftedLabels() {
        INDArray logits = Nd4j.createFromArray(new double[][] {{0, 0, 0}, {1, 2, 3}, {0, 0, 0}});
        INDArray labels = Nd4j.createFromArray(new long[][] {{0, 2, 1}});
        // position 0 predicts 2 (uniform: ln 3), position 1 predicts 1 (logsumexp(1,2,3) - 2), position 2 ignored
        double expect = (Math.log(3) + (Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)) - 2)) / 2;
        assertEquals(expect, new CausalLmLoss().forward(Tape.forInference(1, 3), logits, labels), 1e-12);
    }

    @Test
    void crossEntropyStaysExactWhenTheTargetProbabilityUnderflowsInFloat32() {
        INDArray logits = Nd4j.createFromArray(new float[][] {{120f, 0f, 0f, 0f}, {0f, 0f, 0f, 0f}});
        INDArray labels = Nd4j.createFromArray(new long[][] {{0, 1}});
        // p[target] = e^-120 / (1 + 3e^-120) underflows to 0 in fp32; the loss is still 120
        assertEquals(120.0, new CausalLmLoss().forward(Tape.forTraining(1, 2), logits, labels), 1e-4);
    }

    @Test
    void frozenParametersReceiveNoGradientButPassTheInputGradient() {
        Linear l = new Linear(3, 2, true, D, 0.5);
        l.weight().setTrainable(false);
        Tape t = Tape.forTraining(1, 4);
        l.forward(t, Nd4j.randn(D, 4, 3));
        INDArray dx = l.backward(t, Nd4j.ones(D, 4, 2));
        assertNull(l.weight().grad());
        assertEquals(4, dx.size(0));
        assertEquals(4.0, l.bias().grad().getDouble(0), 1e-12);
    }

    @Test
    void hookFiresOnlyWhenEveryUseDeliveredAndOnlyOnTheLastMicroBatch() {
        Linear l = new Linear(3, 3, false, D, 0.5);
        int[] fired = new int[1];
        l.weight().setHook((p, g) -> {
            fired[0]++;
            return true;
        });
        for (boolean last : new boolean[] {false, true}) {
            Tape t = Tape.forTraining(1, 2).setLastMicroBatch(last);
            INDArray h = l.forward(t, Nd4j.randn(D, 2, 3));
            l.forward(t, h);                       // the same weight used twice (as a tied weight would be)
            l.backward(t, l.backward(t, Nd4j.ones(D, 2, 3)));
        }
        assertEquals(1, fired[0]);
    }

    @Test
    void outOfVocabularyIdIsAClearError() {
        Embedding e = new Embedding(7, 4, D, 0.5);
        var ex = assertThrows(CollieException.class,
                () -> e.forward(Tape.forInference(1, 2), Nd4j.createFromArray(new long[][] {{1, 9}})));
        assertEquals("token id 9 is outside the vocabulary [0, 7)", ex.getMessage());
    }
}
