package dev.collie.parallel.dp;

import dev.collie.core.Scope;
import dev.collie.core.data.Collator;
import dev.collie.core.data.DataLoader;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.GradClip;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.optim.Sgd;
import dev.collie.core.tensor.Backends;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.GradientRoute;
import dev.collie.core.train.StepRunner;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.optim.Adan;
import dev.collie.optim.Lion;
import dev.collie.optim.Lomo;
import dev.collie.optim.SophiaG;
import dev.collie.parallel.comm.LocalRanks;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static dev.collie.parallel.dp.ZeroHarnessTest.Stage.ZERO2;
import static dev.collie.parallel.dp.ZeroHarnessTest.Stage.ZERO3;
import static dev.collie.parallel.dp.ZeroHarnessTest.assertSameAsOneRank;
import static dev.collie.parallel.dp.ZeroHarnessTest.ranks;
import static dev.collie.parallel.dp.ZeroHarnessTest.single;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ZeRO-2/3 with parameters split into one row block per rank: n ranks still reproduce one rank (losses and
 * weights; fp32 to 1e-5, float64 to 1e-11) with tied embeddings, gradient accumulation, activation
 * checkpointing, blocks of unequal rows and every element-wise optimizer; every rank holds about 1/dp; the
 * planner splits only what whole-parameter ownership cannot balance.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
@NumericalParity
class ZeroSplitTest {
    private static final Function<Map<String, Parameter>, Optimizer> ADAMW = ZeroHarnessTest.ADAMW;
    /** Split every parameter over a quarter of a rank's share (the tiny model's 8 KB matrices at dp 4). */
    private static final SplitPolicy FORCE = SplitPolicy.always(0.25);
    /** At dp 2 a quarter of a rank's share is more than the tiny model's largest matrix: a tenth. */
    private static final SplitPolicy FORCE_DP2 = SplitPolicy.always(0.1);

    @AfterAll
    static void restoreOpThreads() {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }

    private static ZeroHarnessTest.Setup setup(int ranks, int steps, int accum, long bucketBytes, DataType dtype,
                                               boolean tied, double lr) {
        return new ZeroHarnessTest.Setup(ranks, steps, accum, bucketBytes, dtype, tied, lr)
                .withSplit(ranks == 2 ? FORCE_DP2 : FORCE);
    }

    private static void assertSplit(ZeroHarnessTest.Run run, String... names) {
        assertTrue(run.split().containsAll(List.of(names)), "split: " + run.split());
    }

    // ---------------------------------------------------------------- which parameters are split

    /** The 134M model's proportions (hidden 768, 12 layers, intermediate 2048, vocab 32000), every dimension ÷ 16. */
    private static DecoderConfig like134M() {
        return DecoderConfig.builder().vocabSize(2000).hiddenSize(48).intermediateSize(128).numHiddenLayers(12)
                .numAttentionHeads(12).numKeyValueHeads(12).maxPositionEmbeddings(64).tieWordEmbeddings(false).build();
    }

    /** Per rank: the split parameters' names and the parameter bytes ZeRO-3 keeps right after sharding. */
    private static List<Object[]> shard(DecoderConfig cfg, int n, SplitPolicy policy) throws Exception {
        return LocalRanks.run(n, Duration.ofSeconds(10), 30, c -> {
            DecoderForCausalLM m = ZeroHarnessTest.model(cfg, DataType.FLOAT);
            // the 134M model's 25 MB buckets hold as many of its matrices as 25 MB / 256 hold of these
            try (Zero3 z = new Zero3(m, c, DataParallel.DEFAULT_BUCKET_BYTES / 256, policy)) {
                return new Object[] {z.splitParameters(), z.memory().parameterBytes()};
            }
        });
    }

    private static double worstShare(List<Object[]> ranks, long total) {
        double worst = 0;
        for (Object[] r : ranks) {
            worst = Math.max(worst, Math.abs((long) r[1] * ranks.size() / (double) total - 1));
        }
        return worst;
    }

    @Test
    void aModelShapedLikeThe134MSplitsItsEmbeddingAndHeadAtDp4Only() throws Exception {
        DecoderConfig cfg = like134M();
        long total = ZeroHarnessTest.model(cfg, DataType.FLOAT).parameterCount() * 4;
        List<Object[]> two = shard(cfg, 2, SplitPolicy.DEFAULT);
        assertEquals(List.of(), two.get(0)[0], "dp 2: whole parameters balance it already");
        assertTrue(worstShare(two, total) < 0.05, "dp 2: " + worstShare(two, total));

        List<Object[]> wholeFour = shard(cfg, 4, SplitPolicy.OFF);
        assertTrue(worstShare(wholeFour, total) > 0.3, "whole parameters at dp 4: " + worstShare(wholeFour, total));
        List<Object[]> four = shard(cfg, 4, SplitPolicy.DEFAULT);
        for (Object[] r : four) {
            assertEquals(List.of("model.embed_tokens.weight", "lm_head.weight"), r[0]);
        }
        assertTrue(worstShare(four, total) < 0.05, "dp 4 split: " + worstShare(four, total));
        System.out.printf("134M-shaped (÷16): worst rank off 1/dp: dp 2 %.1f %%, dp 4 whole %.1f %%, dp 4 split %.1f %%%n",
                100 * worstShare(two, total), 100 * worstShare(wholeFour, total), 100 * worstShare(four, total));
    }

    @Test
    void blocksAreRowsOfTheParameterUnderItsNameAndUnevenRowsAreShared() throws Exception {
        List<long[]> got = LocalRanks.run(4, Duration.ofSeconds(10), 15, c -> {
            // 66 rows over 4 ranks: 16, 17, 16, 17
            DecoderForCausalLM m = ZeroHarnessTest.model(ZeroHarnessTest.config(false, 66), DataType.FLOAT);
            Parameter embed = m.namedParameters().get("model.embed_tokens.weight");
            INDArray before = embed.data().dup();
            try (Zero2 z = new Zero2(m.namedParameters(), c, 4096, FORCE)) {
                assertTrue(z.splitParameters().contains("model.embed_tokens.weight"), z.splitParameters().toString());
                assertEquals(-1, z.owner(embed));
                Parameter block = z.ownedParameters().get("model.embed_tokens.weight");
                long r0 = 66L * c.rank() / 4;
                long r1 = 66L * (c.rank() + 1) / 4;
                assertArrayEquals(new long[] {r1 - r0, 32}, block.shape());
                // ZeRO-2: the block is a view of the value's rows
                assertEquals(before.get(NDArrayIndex.interval(r0, r1),
                        NDArrayIndex.all()), block.data());
                block.data().assign(c.rank() + 1);
                assertEquals(c.rank() + 1, embed.data().getDouble(r0, 0), 0.0, "writes reach the value");
                z.afterStep();          // every rank's block into every rank's value
                for (int q = 0; q < 4; q++) {
                    assertEquals(q + 1, embed.data().getDouble(66L * q / 4, 31), 0.0);
                    assertEquals(q + 1, embed.data().getDouble(66L * (q + 1) / 4 - 1, 0), 0.0);
                }
                return new long[] {z.broadcastBytesSentPerStep(), block.numel()};
            }
        });
        assertEquals(66 * 32, got.get(0)[1] + got.get(1)[1] + got.get(2)[1] + got.get(3)[1]);
    }

    // ---------------------------------------------------------------- ZeRO-2 reproduces one rank

    @Test
    void zero2OnTwoRanksEqualsOneRankAndHoldsHalf() throws Exception {
        ZeroHarnessTest.Setup s = setup(2, 5, 1, 4096, DataType.FLOAT, false, 1e-2);
        ZeroHarnessTest.Run one = single(s, ADAMW);
        ZeroHarnessTest.Run two = ranks(s, ZERO2, ADAMW);
        assertSplit(two, "model.embed_tokens.weight", "lm_head.weight");
        assertSameAsOneRank(one, two, 1e-5);
        RankMemory full = one.memory().get(0);
        assertEquals(full.gradientBytes(), two.memory().get(0).gradientBytes() + two.memory().get(1).gradientBytes(),
                "the blocks' and owners' gradients together are one model's");
        assertEquals(one.optimizerBytes()[0], two.optimizerBytes()[0] + two.optimizerBytes()[1]);
        for (int r = 0; r < 2; r++) {
            assertEquals(full.parameterBytes(), two.memory().get(r).parameterBytes(), "ZeRO-2 keeps every value");
        }
    }

    @Test
    void zero2OnFourRanksTiedOneBucketSendsWhatItPlans() throws Exception {
        ZeroHarnessTest.Setup s = setup(4, 5, 1, DataParallel.DEFAULT_BUCKET_BYTES, DataType.FLOAT, true, 1e-2);
        ZeroHarnessTest.Run four = ranks(s, ZERO2, ADAMW);
        assertSplit(four, "model.embed_tokens.weight");
        assertSameAsOneRank(single(s, ADAMW), four, 1e-5);
        for (int r = 0; r < 4; r++) {
            long extra = four.bytesPerStep()[r] - four.predictedBytesPerStep()[r];
            assertTrue(extra >= 0 && extra <= 128, "rank " + r + ": sent " + four.bytesPerStep()[r] + " per step, planned "
                    + four.predictedBytesPerStep()[r]);
        }
    }

    @Test
    void zero2GradientAccumulationAndWorkerThreads() throws Exception {
        assertSameAsOneRank(single(setup(2, 4, 2, 4096, DataType.FLOAT, false, 1e-2), ADAMW),
                ranks(setup(2, 4, 2, 4096, DataType.FLOAT, false, 1e-2), ZERO2, ADAMW), 1e-5);
        ZeroHarnessTest.Setup workers = new ZeroHarnessTest.Setup(2, 4, 1, 4096, DataType.FLOAT, false, 1e-2, 2, 2)
                .withSplit(FORCE_DP2);
        assertSameAsOneRank(single(workers, ADAMW), ranks(workers, ZERO2, ADAMW), 1e-5);
    }

    @Test
    void zero2Float64UnevenRowsAgreesToRoundOff() throws Exception {
        ZeroHarnessTest.Setup s = setup(4, 3, 1, 4096, DataType.DOUBLE, true, 1e-2).withVocab(66);
        ZeroHarnessTest.Run four = ranks(s, ZERO2, ADAMW);
        assertSplit(four, "model.embed_tokens.weight");
        assertSameAsOneRank(single(s, ADAMW), four, 1e-11);
    }

    // ---------------------------------------------------------------- ZeRO-3 reproduces one rank

    @Test
    void zero3OnTwoAndFourRanksEqualsOneRank() throws Exception {
        ZeroHarnessTest.Setup two = setup(2, 5, 1, 4096, DataType.FLOAT, false, 1e-2);
        ZeroHarnessTest.Run r2 = ranks(two, ZERO3, ADAMW);
        assertSplit(r2, "model.embed_tokens.weight", "lm_head.weight");
        assertSameAsOneRank(single(two, ADAMW), r2, 1e-5);
        ZeroHarnessTest.Setup four = setup(4, 5, 1, 4096, DataType.FLOAT, true, 1e-2);
        ZeroHarnessTest.Run r4 = ranks(four, ZERO3, ADAMW);
        assertSplit(r4, "model.embed_tokens.weight");
        assertSameAsOneRank(single(four, ADAMW), r4, 1e-5);
    }

    @Test
    void zero3GradientAccumulationOnFourRanksOneBucket() throws Exception {
        ZeroHarnessTest.Setup s = setup(4, 5, 2, DataParallel.DEFAULT_BUCKET_BYTES, DataType.FLOAT, false, 1e-2);
        assertSameAsOneRank(single(s, ADAMW), ranks(s, ZERO3, ADAMW), 1e-5);
    }

    @Test
    void zero3ActivationCheckpointingWithATiedSplitTable() throws Exception {
        ZeroHarnessTest.Setup s = setup(2, 3, 1, 4096, DataType.FLOAT, true, 1e-2).withRecompute();
        assertSameAsOneRank(single(s, ADAMW), ranks(s, ZERO3, ADAMW), 1e-5);
    }

    @Test
    void zero3Float64UnevenRowsAndAccumulationAgreeToRoundOff() throws Exception {
        ZeroHarnessTest.Setup s = setup(4, 3, 2, 4096, DataType.DOUBLE, true, 1e-2).withVocab(66);
        ZeroHarnessTest.Run four = ranks(s, ZERO3, ADAMW);
        assertSplit(four, "model.embed_tokens.weight");
        assertSameAsOneRank(single(s, ADAMW), four, 1e-11);
        ZeroHarnessTest.Setup untied = setup(4, 3, 1, 4096, DataType.DOUBLE, false, 1e-2).withVocab(66);
        assertSameAsOneRank(single(untied, ADAMW), ranks(untied, ZERO3, ADAMW), 1e-11);
    }

    @Test
    void everyElementWiseOptimizerTrainsRowBlocksAsWholeMatrices() throws Exception {
        List<Function<Map<String, Parameter>, Optimizer>> rules = List.of(
                p -> new Lion(p, 0.9, 0.99, 0.01),
                p -> new Adan(p),
                p -> new SophiaG(p, 0.965, 0.99, 0.04, 0.1, 5120, 2),
                Sgd::new);
        for (Function<Map<String, Parameter>, Optimizer> rule : rules) {
            for (ZeroHarnessTest.Stage stage : new ZeroHarnessTest.Stage[] {ZERO2, ZERO3}) {
                ZeroHarnessTest.Setup s = setup(4, 4, 1, 4096, DataType.DOUBLE, false, 1e-2).withVocab(66);
                ZeroHarnessTest.Run four = ranks(s, stage, rule);
                assertSplit(four, "model.embed_tokens.weight", "lm_head.weight");
                assertSameAsOneRank(single(s, rule), four, 1e-11);
            }
        }
    }

    @Test
    void zero3HoldsAQuarterOnEveryRank() throws Exception {
        ZeroHarnessTest.Setup s = setup(4, 2, 1, 4096, DataType.FLOAT, false, 1e-2);
        ZeroHarnessTest.Run one = single(s, ADAMW);
        ZeroHarnessTest.Run four = ranks(s, ZERO3, ADAMW);
        RankMemory full = one.memory().get(0);
        long whole = full.parameterBytes() + full.gradientBytes() + one.optimizerBytes()[0];
        long params = 0;
        long grads = 0;
        long state = 0;
        for (int r = 0; r < 4; r++) {
            RankMemory m = four.memory().get(r);
            double share = (double) (m.parameterBytes() + m.gradientBytes() + four.optimizerBytes()[r]) / whole;
            assertTrue(Math.abs(share - 0.25) < 0.025, "rank " + r + " holds " + share);
            params += m.parameterBytes();
            grads += m.gradientBytes();
            state += four.optimizerBytes()[r];
        }
        assertEquals(full.parameterBytes(), params, "every element's value on exactly one rank");
        assertEquals(full.gradientBytes(), grads, "every element's gradient on exactly one rank");
        assertEquals(one.optimizerBytes()[0], state);
    }

    // ---------------------------------------------------------------- norms, checkpoints, fused optimizers

    @Test
    void theGlobalNormCountsEveryBlockOnceAndClippingOverTheOptimizersParametersIsExact() throws Exception {
        // what the Trainer should do under ZeRO-2/3 with split parameters: the norm over the optimizer's
        // parameters (owned whole ones and row blocks), squares summed over the ranks, then scale those
        int steps = 4;
        ZeroHarnessTest.Setup s = setup(2, steps, 1, 4096, DataType.DOUBLE, false, 1e-2);
        DecoderForCausalLM ref = ZeroHarnessTest.model(ZeroHarnessTest.config(false), DataType.DOUBLE);
        Optimizer refOpt = ADAMW.apply(ref.namedParameters());
        List<StepStats> refStats = Trainer.builder().model(ref).optimizer(refOpt)
                .config(s.collie(2).toBuilder().clipGradNorm(0.5).build()).trainData(ZeroHarnessTest.ROWS).build().train();
        List<Object[]> got = LocalRanks.run(2, Duration.ofSeconds(10), 30, c -> {
            DecoderForCausalLM m = ZeroHarnessTest.model(ZeroHarnessTest.config(false), DataType.DOUBLE);
            try (Zero2 z = new Zero2(m.namedParameters(), c, 4096, FORCE_DP2);
                 StepRunner runner = new StepRunner(m, 1, 1)) {
                Optimizer opt = ADAMW.apply(z.ownedParameters());
                GradientRoute.compose(z, opt);
                DataLoader loader = DataLoader.builder(ZeroHarnessTest.ROWS, new Collator(0, false))
                        .microBatchSize(1).shuffle(false).numReplicas(2).rank(c.rank()).build();
                List<Double> norms = new ArrayList<>();
                for (int step = 0; step < steps; step++) {
                    runner.forwardBackward(loader.step(0, step));
                    z.finishReduction();
                    for (Parameter p : m.module().trainableParameters()) {
                        assertEquals(z.owner(p) == c.rank(), p.grad() != null, "split: no whole gradient");
                    }
                    double norm = z.globalGradientNorm();
                    double mine = GradClip.globalNorm(z.ownedParameters().values());
                    double sum = Math.sqrt(z.average(mine * mine) * 2);
                    assertEquals(norm, sum, 1e-12 * norm);
                    GradClip.scaleToNorm(z.ownedParameters().values(), norm, 0.5);
                    opt.step(1e-2);
                    z.afterStep();
                    norms.add(norm);
                }
                return new Object[] {norms, ZeroHarnessTest.copy(m), z.splitParameters()};
            }
        });
        for (Object[] r : got) {
            assertFalse(((List<?>) r[2]).isEmpty());
            @SuppressWarnings("unchecked") List<Double> norms = (List<Double>) r[0];
            for (int i = 0; i < steps; i++) {
                double want = refStats.get(i).gradNorm();
                assertTrue(want > 0.5, "clipping is active: " + want);
                assertEquals(want, norms.get(i), 1e-11 * want, "norm of step " + i);
            }
            @SuppressWarnings("unchecked") Map<String, INDArray> w = (Map<String, INDArray>) r[1];
            assertTrue(Agreement.maxAbsDiff(w, ZeroHarnessTest.copy(ref)) <= 1e-11);
        }
    }

    private interface Body<T> {
        T run(DecoderForCausalLM model, Zero3 zero) throws Exception;
    }

    private static <T> List<T> twoRanks(Body<T> body) throws Exception {
        return LocalRanks.run(2, Duration.ofSeconds(10), 30, c -> {
            DecoderForCausalLM m = ZeroHarnessTest.model(ZeroHarnessTest.config(false), DataType.FLOAT);
            try (Zero3 z = new Zero3(m, c, 4096, FORCE_DP2)) {
                assertFalse(z.splitParameters().isEmpty());
                return body.run(m, z);
            }
        });
    }

    @Test
    void zero3CheckpointOfRowBlocksResumesExactly(@TempDir Path tmp) throws Exception {
        ZeroHarnessTest.assertZero3CheckpointResumesExactly(tmp.resolve("ckpt"), body -> twoRanks(body::run));
    }

    @Test
    void zero3GatheredModelIsWholeAndSplitValuesAreOffloadedOtherwise() throws Exception {
        twoRanks((m, z) -> {
            for (String name : z.splitParameters()) {
                Parameter p = m.namedParameters().get(name);
                assertFalse(p.isResident(), name + " lives in the ranks' blocks");
                assertNull(p.grad());
                assertTrue(z.ownedParameters().get(name).isResident());
            }
            try (Scope all = z.gathered()) {
                m.namedParameters().values().forEach(p -> assertTrue(p.isResident()));
            }
            for (String name : z.splitParameters()) {
                assertFalse(m.namedParameters().get(name).isResident());
            }
            return null;
        });
    }

    @Test
    void fusedOptimizersNeedWholeParameters() throws Exception {
        Function<Map<String, Parameter>, Optimizer> lomo = p -> new Lomo(p, 0, 0, 0.01, null);
        for (ZeroHarnessTest.Stage stage : new ZeroHarnessTest.Stage[] {ZERO2, ZERO3}) {
            ZeroHarnessTest.Setup split = setup(4, 2, 1, 4096, DataType.FLOAT, false, 0.5);
            // the Trainer refuses it up front (ZeRO itself would refuse the first fused gradient)
            Exception e = assertThrows(Exception.class, () -> ranks(split, stage, lomo));
            assertTrue(ZeroHarnessTest.mentions(e, "splitLargeParameters(false)"), e.toString());
            // the harness builds a fused optimizer's sync with splitting off, as a caller must
            ZeroHarnessTest.Setup whole = new ZeroHarnessTest.Setup(4, 3, 1, 4096, DataType.FLOAT, false, 1e-2);
            ZeroHarnessTest.Run four = ranks(whole, stage, ZeroHarnessTest.ADALOMO);
            assertEquals(List.of(), four.split());
            assertSameAsOneRank(single(whole, ZeroHarnessTest.ADALOMO), four, 1e-5);
        }
    }

    @Test
    void theBytesOfASplitParameterFollowTheRingFormulas() {
        // 66 rows of 32 over 4 ranks: 16/17/16/17 rows; a rank sends every block but the next rank's
        Parameter p = new Parameter(Nd4j.zeros(DataType.FLOAT, 66, 32));
        RowBlocks rb = new RowBlocks("w", p, 4, 1, true);
        assertFalse(rb.equal());
        assertArrayEquals(new long[] {16 * 32, 17 * 32, 16 * 32, 17 * 32}, RowBlocks.blockElements(p.shape(), p.numel(), 4));
        assertEquals((66 - 16) * 32 * 4, rb.gatherBytesSent(1));
        assertEquals(Arrays.toString(new long[] {17, 32}), Arrays.toString(rb.block.shape()));
    }
}
