package dev.collie.parallel.tp;

import dev.collie.core.CollieException;
import dev.collie.core.data.Batch;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.dist.Sharding;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.LayerWrapper;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.optim.Sgd;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.ActivationCheckpointing;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.StepRunner;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.decoder.ModelFamily;
import dev.collie.parallel.comm.LocalCommunicators;
import dev.collie.parallel.testing.OneOpThread;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static dev.collie.parallel.tp.TpRanks.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A whole tiny LLaMA (hidden 32, 4 heads, 2 KV heads, intermediate 64, vocabulary 64, 2 layers) split over
 * 2 (and 4) local ranks, in float64, against the same model on one rank: loss, every gradient gathered to
 * its full shape, the gathered weights, and the bytes the tensor-parallel collectives send.
 */
@Timeout(value = 15, unit = TimeUnit.SECONDS)
@ExtendWith(OneOpThread.class)
@NumericalParity
class TensorParallelModelTest {
    private static final int HIDDEN = 32;
    private static final int LAYERS = 2;
    private static final int ROWS = 2;
    private static final int SEQ = 8;

    private static DecoderConfig config(boolean tied, int heads, int kvHeads) {
        return DecoderConfig.builder().vocabSize(64).hiddenSize(HIDDEN).intermediateSize(64).numHiddenLayers(LAYERS)
                .numAttentionHeads(heads).numKeyValueHeads(kvHeads).maxPositionEmbeddings(64)
                .tieWordEmbeddings(tied).initializerRange(0.1).build();
    }

    /** The same weights every time: the seed is set before construction. */
    private static DecoderForCausalLM model(DecoderConfig c) {
        Nd4j.getRandom().setSeed(42);
        return new DecoderForCausalLM(c, DataType.DOUBLE);
    }

    /** Two rows of 8 tokens; an ignored label in row 0, row 1 padded at the end. */
    private static Batch batch(long seed) {
        Random rnd = new Random(seed);
        long[][] ids = new long[ROWS][SEQ];
        long[][] labels = new long[ROWS][SEQ];
        long[][] mask = new long[ROWS][SEQ];
        for (int r = 0; r < ROWS; r++) {
            for (int t = 0; t < SEQ; t++) {
                boolean pad = r == 1 && t >= SEQ - 2;
                ids[r][t] = pad ? 0 : rnd.nextInt(64);
                labels[r][t] = pad ? CausalLmLoss.IGNORE_INDEX : ids[r][t];
                mask[r][t] = pad ? 0 : 1;
            }
        }
        labels[0][3] = CausalLmLoss.IGNORE_INDEX;
        return new Batch(Nd4j.createFromArray(ids), Nd4j.createFromArray(labels), Nd4j.createFromArray(mask));
    }

    private record Run(double loss, Map<String, INDArray> grads, long bytes, Map<String, INDArray> gathered,
                       Map<String, ParallelStyle> styles) {
    }

    private static Map<String, INDArray> gradients(Module m) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        m.namedParameters().forEach((n, p) -> out.put(n, TpRanks.copy(p.grad())));
        return out;
    }

    /** Splits the model on n ranks and runs the micro-batches; compares with one rank; returns the bytes per rank. */
    private static long compare(DecoderConfig c, int n, List<Batch> micro, boolean checkpointing) throws Exception {
        DecoderForCausalLM ref = model(c);
        ActivationCheckpointing.apply(ref, checkpointing);
        double refLoss;
        try (StepRunner r = new StepRunner(ref, 1, 1)) {
            refLoss = r.forwardBackward(micro);
        }
        Map<String, INDArray> refGrads = gradients(ref);
        List<DecoderForCausalLM> models = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            DecoderForCausalLM m = model(c);
            ActivationCheckpointing.apply(m, checkpointing);
            m.namedParameters().forEach((name, p) -> assertEquals(0.0, maxAbsDiff(ref.namedParameters().get(name).data(),
                    p.data()), "seeded construction differs at " + name));
            models.add(m);
        }
        List<Run> runs = TpRanks.run(n, comm -> {
            LanguageModel tp = TensorParallel.apply(models.get(comm.rank()), comm);
            assertInstanceOf(TensorParallelModel.class, tp);
            assertEquals(64, tp.vocabSize());
            assertInstanceOf(VocabParallelLoss.class, tp.loss());
            List<Layer> layers = tp.pipelineLayers();
            assertInstanceOf(VocabParallelEmbedding.class, layers.get(0));
            assertInstanceOf(VocabParallelHead.class, LayerWrapper.unwrap(layers.get(layers.size() - 1)));
            long before = comm.bytesSent();
            double loss;
            try (StepRunner r = new StepRunner(tp, 1, 1)) {
                loss = r.forwardBackward(micro);
            }
            long bytes = comm.bytesSent() - before;
            Map<String, ParallelStyle> styles = TensorParallel.styles(tp);
            // the one record of a split: the parameter's sharding, with its dimension and group
            tp.module().namedParameters().forEach((name, p) -> {
                assertEquals(Sharding.dimOf(styles.get(name)), p.shardDim(), name);
                assertEquals(p.shardDim() < 0 ? null : comm, p.shardGroup(), name);
            });
            return new Run(loss, gradients(tp.module()), bytes, TensorParallel.gatherFullWeights(tp, comm), styles);
        });
        double worstGrad = 0;
        for (int k = 0; k < n; k++) {
            Run r = runs.get(k);
            assertEquals(runs.get(0).loss, r.loss, 0.0, "ranks agree on the loss bit for bit");
            assertEquals(refGrads.keySet(), r.grads.keySet(), "Hugging Face parameter names");
            assertEquals(refGrads.keySet(), r.gathered.keySet(), "names of the gathered weights");
            assertEquals(runs.get(0).bytes, r.bytes);
        }
        double lossDiff = Math.abs(runs.get(0).loss - refLoss);
        Map<String, ParallelStyle> styles = runs.get(0).styles;
        for (Map.Entry<String, INDArray> e : refGrads.entrySet()) {
            String name = e.getKey();
            ParallelStyle style = styles.get(name);
            List<INDArray> shards = new ArrayList<>();
            for (Run r : runs) {
                shards.add(r.grads.get(name));
            }
            if (style == ParallelStyle.REPLICATE) {
                for (INDArray g : shards) {
                    worstGrad = Math.max(worstGrad, maxAbsDiff(e.getValue(), g));
                }
            } else {
                worstGrad = Math.max(worstGrad, maxAbsDiff(e.getValue(), TpRanks.join(shards, style)));
            }
            for (Run r : runs) {
                assertEquals(0.0, maxAbsDiff(ref.namedParameters().get(name).data(), r.gathered.get(name)),
                        "gathered weight " + name);
            }
        }
        System.out.printf("tp=%d tied=%s checkpointing=%s micro-batches=%d: loss %.15f vs %.15f (|diff| %.3g),"
                        + " gradients max |diff| %.3g, %d bytes sent per rank%n", n, c.tieWordEmbeddings(), checkpointing,
                micro.size(), runs.get(0).loss, refLoss, lossDiff, worstGrad, runs.get(0).bytes);
        assertTrue(lossDiff <= 1e-12, "loss differs by " + lossDiff);
        assertTrue(worstGrad <= 1e-10, "gradients differ by " + worstGrad);
        // the split styles
        assertEquals(ParallelStyle.VOCAB, styles.get("model.embed_tokens.weight"));
        assertEquals(ParallelStyle.COLUMN, styles.get("model.layers.0.self_attn.q_proj.weight"));
        assertEquals(ParallelStyle.COLUMN, styles.get("model.layers.1.mlp.up_proj.weight"));
        assertEquals(ParallelStyle.ROW, styles.get("model.layers.0.self_attn.o_proj.weight"));
        assertEquals(ParallelStyle.ROW, styles.get("model.layers.1.mlp.down_proj.weight"));
        assertEquals(ParallelStyle.REPLICATE, styles.get("model.layers.0.input_layernorm.weight"));
        assertEquals(ParallelStyle.REPLICATE, styles.get("model.norm.weight"));
        assertEquals(c.tieWordEmbeddings() ? null : ParallelStyle.VOCAB, styles.get("lm_head.weight"));
        return runs.get(0).bytes;
    }

    /** Per rank, per micro-batch: (4 per block + embedding + head) all-reduces of [rows, hidden], and the loss's 3 per row. */
    private static long expectedBytes(int n, int microBatches, int extraPerBlock) {
        double ring = 2.0 * (n - 1) / n;
        long rows = (long) ROWS * SEQ;
        long hiddenArrays = (long) (4 + extraPerBlock) * LAYERS + 2;
        return microBatches * Math.round(ring * (hiddenArrays * rows * HIDDEN + 3 * rows) * Double.BYTES);
    }

    @Test
    void untiedModelOnTwoRanksEqualsOneRank() throws Exception {
        long bytes = compare(config(false, 4, 2), 2, List.of(batch(1)), false);
        assertEquals(expectedBytes(2, 1, 0), bytes);
    }

    @Test
    void tiedModelOnTwoRanksWithTwoMicroBatchesEqualsOneRank() throws Exception {
        long bytes = compare(config(true, 4, 2), 2, List.of(batch(2), batch(3)), false);
        assertEquals(expectedBytes(2, 2, 0), bytes);
    }

    @Test
    void gradientCheckpointingRecomputesTheForwardCollectives() throws Exception {
        long bytes = compare(config(false, 4, 2), 2, List.of(batch(4)), true);
        // the recomputed forward of each block repeats its 2 all-reduces
        assertEquals(expectedBytes(2, 1, 2), bytes);
    }

    @Test
    void fourRanksWithFourKvHeadsEqualOneRank() throws Exception {
        long bytes = compare(config(false, 4, 4), 4, List.of(batch(5)), false);
        assertEquals(expectedBytes(4, 1, 0), bytes);
        compare(config(true, 4, 4), 4, List.of(batch(6)), false);
    }

    @Test
    void float32TrainingWithSgdFollowsTheSingleRankLossCurve() throws Exception {
        DecoderConfig c = config(false, 4, 2);
        int steps = 4;
        double lr = 0.5;
        Nd4j.getRandom().setSeed(42);
        DecoderForCausalLM ref = new DecoderForCausalLM(c, DataType.FLOAT);
        Sgd refOpt = new Sgd(ref.namedParameters());
        double[] refLoss = new double[steps];
        try (StepRunner r = new StepRunner(ref, 1, 1)) {
            for (int s = 0; s < steps; s++) {
                refLoss[s] = r.forwardBackward(List.of(batch(10 + s)));
                refOpt.step(lr);
                ref.zeroGrad();
            }
        }
        List<DecoderForCausalLM> models = new ArrayList<>();
        for (int k = 0; k < 2; k++) {
            Nd4j.getRandom().setSeed(42);
            models.add(new DecoderForCausalLM(c, DataType.FLOAT));
        }
        List<Object[]> runs = TpRanks.run(2, comm -> {
            LanguageModel tp = TensorParallel.apply(models.get(comm.rank()), comm);
            Sgd opt = new Sgd(tp.module().namedParameters());
            double[] losses = new double[steps];
            try (StepRunner r = new StepRunner(tp, 1, 1)) {
                for (int s = 0; s < steps; s++) {
                    losses[s] = r.forwardBackward(List.of(batch(10 + s)));
                    opt.step(lr);
                    tp.module().zeroGrad();
                }
            }
            return new Object[] {losses, TensorParallel.gatherFullWeights(tp, comm)};
        });
        double worstLoss = 0;
        double worstWeight = 0;
        for (Object[] run : runs) {
            double[] losses = (double[]) run[0];
            for (int s = 0; s < steps; s++) {
                worstLoss = Math.max(worstLoss, Math.abs(losses[s] - refLoss[s]));
            }
            @SuppressWarnings("unchecked")
            Map<String, INDArray> w = (Map<String, INDArray>) run[1];
            for (Map.Entry<String, Parameter> e : ref.namedParameters().entrySet()) {
                worstWeight = Math.max(worstWeight, maxAbsDiff(e.getValue().data(), w.get(e.getKey())));
            }
        }
        // a falling loss: SGD on a diverging run would grow rounding differences step by step
        assertTrue(refLoss[steps - 1] < refLoss[0] - 0.05, "the loss went down: " + Arrays.toString(refLoss));
        Agreement.within("fp32 tp=2 SGD: losses vs one rank", worstLoss, 1e-5);
        Agreement.within("fp32 tp=2 SGD: weights vs one rank's", worstWeight, 1e-5);
    }

    @Test
    void threeRanksAreRejectedNamingTheFieldsAndTheModelIsLeftAlone() {
        DecoderForCausalLM m = model(config(false, 4, 2));
        Map<String, String> before = new LinkedHashMap<>();
        m.namedModules().forEach((name, mod) -> before.put(name, mod.getClass().getName()));
        var comms = LocalCommunicators.create(3);
        CollieException e = assertThrows(CollieException.class, () -> TensorParallel.apply(m, comms.get(0)));
        assertEquals("cannot split DecoderForCausalLM over 3 tensor-parallel ranks: vocab_size = 64,"
                + " num_attention_heads = 4, num_key_value_heads = 2, intermediate_size = 64 are not divisible by 3",
                e.getMessage());
        Map<String, String> after = new LinkedHashMap<>();
        m.namedModules().forEach((name, mod) -> after.put(name, mod.getClass().getName()));
        assertEquals(before, after);
        comms.forEach(c -> c.close());
    }

    /**
     * More ranks than key/value heads (4 ranks, 2 heads; and multi-query, 1 head on 2 ranks): every rank keeps the
     * key/value projections whole, reads the heads its query heads use, and sums their gradients: one rank's loss
     * and gradients, in float64.
     */
    @Test
    void moreRanksThanKeyValueHeadsShareThemAndEqualOneRank() throws Exception {
        compare(config(false, 4, 2), 4, List.of(batch(7)), false);
        compare(config(true, 4, 1), 2, List.of(batch(8)), false);
    }

    @Test
    void keyValueHeadsThatRanksCanNeitherSplitNorShareAreRejected() {
        DecoderForCausalLM m = model(config(false, 4, 2).toBuilder().vocabSize(96).numAttentionHeads(6).headDim(4)
                .intermediateSize(66).build());
        var comms = LocalCommunicators.create(3);
        CollieException e = assertThrows(CollieException.class, () -> TensorParallel.apply(m, comms.get(0)));
        assertEquals("cannot split DecoderForCausalLM over 3 tensor-parallel ranks: num_key_value_heads = 2 is not"
                + " divisible by 3", e.getMessage());
        comms.forEach(c -> c.close());
    }

    /** A fused projection in key/value-group order is cut into whole groups, so its groups must divide by the ranks. */
    @Test
    void internLm2sFusedProjectionNeedsWholeKeyValueGroupsPerRank() {
        DecoderConfig c = config(false, 4, 1).toBuilder().family(ModelFamily.INTERNLM2).build();
        DecoderForCausalLM m = model(c);
        var comms = LocalCommunicators.create(2);
        CollieException e = assertThrows(CollieException.class, () -> TensorParallel.apply(m, comms.get(0)));
        assertEquals("cannot split DecoderForCausalLM over 2 tensor-parallel ranks: num_key_value_heads = 1 is not"
                + " divisible by 2", e.getMessage());
        comms.forEach(c2 -> c2.close());
    }

    /** CodeGen's qkv_proj is cut into whole groups of its four, so more ranks than groups are refused. */
    @Test
    void codeGensFusedProjectionNeedsWholeGroupsPerRank() {
        DecoderConfig c = DecoderConfig.builder(ModelFamily.CODEGEN).vocabSize(64).hiddenSize(HIDDEN)
                .intermediateSize(64).numHiddenLayers(1).numAttentionHeads(8).rotaryDim(2).maxPositionEmbeddings(64)
                .build();
        DecoderForCausalLM m = model(c);
        var comms = LocalCommunicators.create(8);
        CollieException e = assertThrows(CollieException.class, () -> TensorParallel.apply(m, comms.get(0)));
        assertEquals("cannot split DecoderForCausalLM over 8 tensor-parallel ranks: the groups of qkv_proj = 4 is not"
                + " divisible by 8", e.getMessage());
        comms.forEach(c2 -> c2.close());
    }

    /** {@code m} with another plan. */
    private static LanguageModel withPlan(DecoderForCausalLM m, Map<String, ParallelStyle> plan) {
        return new LanguageModel() {
            @Override public Module module() { return m; }
            @Override public INDArray forward(Tape t, INDArray ids) { return m.forward(t, ids); }
            @Override public void backward(Tape t, INDArray d) { m.backward(t, d); }
            @Override public long vocabSize() { return m.vocabSize(); }
            @Override public List<Layer> pipelineLayers() { return m.pipelineLayers(); }
            @Override public Map<String, ParallelStyle> tensorParallelPlan() { return plan; }
        };
    }

    @Test
    void aModelWithoutAPlanOrWithAWholeOutputHeadIsRejected() {
        DecoderForCausalLM m = model(config(false, 4, 2));
        var comms = LocalCommunicators.create(2);
        String none = assertThrows(CollieException.class, () -> TensorParallel.apply(withPlan(m, Map.of()), comms.get(0)))
                .getMessage();
        assertTrue(none.endsWith(" declares no tensor-parallel plan, so it cannot be split over 2 tensor-parallel ranks"), none);
        Map<String, ParallelStyle> noHead = new LinkedHashMap<>(m.tensorParallelPlan());
        noHead.remove("lm_head");
        String msg = assertThrows(CollieException.class, () -> TensorParallel.apply(withPlan(m, noHead), comms.get(0)))
                .getMessage();
        assertTrue(msg.contains("does not split the output head over the vocabulary"), msg);
        assertInstanceOf(Linear.class, m.namedModules().get("lm_head"), "left unchanged");
        comms.forEach(c -> c.close());
    }

    @Test
    void oneRankLeavesTheModelAsItIs() {
        DecoderForCausalLM m = model(config(true, 4, 2));
        var comms = LocalCommunicators.create(1);
        assertSame(m, TensorParallel.apply(m, comms.get(0)));
        assertFalse(TensorParallel.isSharded(m.namedParameters().get("model.embed_tokens.weight")));
        Map<String, INDArray> full = TensorParallel.gatherFullWeights(m, comms.get(0));
        m.namedParameters().forEach((n, p) -> assertEquals(p.data(), full.get(n)));
        comms.forEach(c -> c.close());
    }
}
