package dev.collie.parallel.dp;

import dev.collie.core.data.Collator;
import dev.collie.core.data.DataLoader;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.optim.Sgd;
import dev.collie.core.tensor.Backends;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.GradientRoute;
import dev.collie.core.train.StepRunner;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.optim.Lomo;
import dev.collie.parallel.comm.LocalRanks;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nd4j.linalg.api.buffer.DataType;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static dev.collie.parallel.dp.ZeroHarnessTest.Stage.ZERO2;
import static dev.collie.parallel.dp.ZeroHarnessTest.assertSameAsOneRank;
import static dev.collie.parallel.dp.ZeroHarnessTest.ranks;
import static dev.collie.parallel.dp.ZeroHarnessTest.setup;
import static dev.collie.parallel.dp.ZeroHarnessTest.single;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** ZeRO-2 under the Trainer: n rank threads reproduce one rank's losses and weights; gradients live on owners only. */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
@NumericalParity
class Zero2Test {
    private static final Function<Map<String, Parameter>, Optimizer> ADAMW = ZeroHarnessTest.ADAMW;

    @AfterAll
    static void restoreOpThreads() {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }

    @Test
    void adamWOnTwoRanksEqualsOneRankAndShardsStateAndGradients() throws Exception {
        ZeroHarnessTest.Setup s = setup(2);
        ZeroHarnessTest.Run one = single(s, ADAMW);
        ZeroHarnessTest.Run two = ranks(s, ZERO2, ADAMW);
        assertSameAsOneRank(one, two, 1e-5);
        RankMemory full = one.memory().get(0);
        long gradients = 0;
        for (int r = 0; r < 2; r++) {
            RankMemory m = two.memory().get(r);
            assertEquals(full.parameterBytes(), m.parameterBytes(), "ZeRO-2 keeps every parameter");
            assertTrue(m.gradientBytes() < 0.6 * full.gradientBytes(), "rank " + r + ": " + m);
            gradients += m.gradientBytes();
            assertTrue(two.optimizerBytes()[r] < 0.6 * one.optimizerBytes()[0]);
            // a small pool, not a buffer per bucket: at most a few 4 KB-bucket buffers (an 8 KB matrix each)
            assertTrue(m.bufferBytes() <= 4 * 8192, "rank " + r + " buffers " + m.bufferBytes());
        }
        assertEquals(full.gradientBytes(), gradients, "the owners' gradients together are one model's");
        assertEquals(one.optimizerBytes()[0], two.optimizerBytes()[0] + two.optimizerBytes()[1]);
    }

    @Test
    void adamWOnFourRanksEqualsOneRankTiedEmbeddingsOneBucket() throws Exception {
        ZeroHarnessTest.Setup s = new ZeroHarnessTest.Setup(4, 5, 1, DataParallel.DEFAULT_BUCKET_BYTES, DataType.FLOAT,
                true, 1e-2);
        ZeroHarnessTest.Run one = single(s, ADAMW);
        ZeroHarnessTest.Run four = ranks(s, ZERO2, ADAMW);
        assertSameAsOneRank(one, four, 1e-5);
        for (int r = 0; r < 4; r++) {
            // every collective of the step is one this object planned: the gradient reduce-scatter, the
            // broadcasts after the step, and four 8-byte all-reduces (ring: ≤ 2 × 8 × 2 bytes each): the loss and
            // token averages, the gradient norm's sum and the stop flag
            long extra = four.bytesPerStep()[r] - four.predictedBytesPerStep()[r];
            assertTrue(extra >= 0 && extra <= 128, "rank " + r + ": sent " + four.bytesPerStep()[r] + " per step, planned "
                    + four.predictedBytesPerStep()[r]);
        }
    }

    @Test
    void gradientAccumulationOfTwoEqualsOneRank() throws Exception {
        ZeroHarnessTest.Setup s = new ZeroHarnessTest.Setup(2, 5, 2, 4096, DataType.FLOAT, false, 1e-2);
        assertSameAsOneRank(single(s, ADAMW), ranks(s, ZERO2, ADAMW), 1e-5);
    }

    @Test
    void float64OnFourRanksAgreesToRoundOff() throws Exception {
        ZeroHarnessTest.Setup s = new ZeroHarnessTest.Setup(4, 3, 1, 4096, DataType.DOUBLE, true, 1e-2);
        assertSameAsOneRank(single(s, ADAMW), ranks(s, ZERO2, ADAMW), 1e-11);
    }

    @Test
    void lomoOnTwoRanksEqualsOneRank() throws Exception {
        // the owners update inside backward (the Trainer's hook on the optimizer's = owned parameters), the
        // other parameters are reduced from ZeRO-2's own hook in the same order, then broadcast at the step's end
        ZeroHarnessTest.Setup s = new ZeroHarnessTest.Setup(2, 5, 1, 4096, DataType.FLOAT, true, ZeroHarnessTest.LOMO_LR);
        ZeroHarnessTest.Run one = single(s, ZeroHarnessTest.LOMO);
        ZeroHarnessTest.Run two = ranks(s, ZERO2, ZeroHarnessTest.LOMO);
        ZeroHarnessTest.assertStable(one);
        assertSameAsOneRank(one, two, 1e-6);
        for (RankMemory m : two.memory()) {
            assertEquals(0, m.gradientBytes(), "LOMO frees every gradient");
        }
    }

    @Test
    void adaLomoOnTwoRanksEqualsOneRank() throws Exception {
        Function<Map<String, Parameter>, Optimizer> ada = ZeroHarnessTest.ADALOMO;
        ZeroHarnessTest.Setup s = new ZeroHarnessTest.Setup(2, 4, 1, 4096, DataType.FLOAT, false, 1e-2);
        assertSameAsOneRank(single(s, ada), ranks(s, ZERO2, ada), 1e-5);
    }

    @Test
    void twoPassLomoClippingIsRefusedOnEveryRank() throws Exception {
        Function<Map<String, Parameter>, Optimizer> clipped = p -> new Lomo(p, 1.0, 0, 0, null);
        ZeroHarnessTest.Setup s = new ZeroHarnessTest.Setup(2, 2, 1, 4096, DataType.FLOAT, false, 0.5);
        Exception e = assertThrows(Exception.class, () -> ranks(s, ZERO2, clipped));
        // the Trainer refuses it up front; ZeRO itself would stop at the second reduction of a step
        assertTrue(ZeroHarnessTest.mentions(e, "which a ZeRO rank does not hold"), e.toString());
    }

    @Test
    void nonOwnersFreeTheirGradientsAndTheGlobalNormCoversAllRanks() throws Exception {
        List<double[]> got = LocalRanks.run(2, Duration.ofSeconds(10), 15, c -> {
            DecoderForCausalLM m = ZeroHarnessTest.model(ZeroHarnessTest.config(false), DataType.FLOAT);
            try (Zero2 z = new Zero2(m.namedParameters(), c, 4096);
                 StepRunner runner = new StepRunner(m, 1, 1)) {
                var loader = DataLoader.builder(ZeroHarnessTest.ROWS,
                        new Collator(0, false)).microBatchSize(1).shuffle(false)
                        .numReplicas(2).rank(c.rank()).build();
                GradientRoute.compose(z, new Sgd(z.ownedParameters()));
                runner.forwardBackward(loader.step(0, 0));
                z.finishReduction();
                double localSq = 0;
                for (Parameter p : m.module().trainableParameters()) {
                    // a parameter split into row blocks (owner -1) holds no gradient on any rank
                    boolean owner = z.owner(p) == c.rank();
                    assertEquals(owner, p.grad() != null, "gradient held by " + (owner ? "owner" : "non-owner"));
                    assertEquals(owner ? p.numel() * 4 : 0, p.gradientBufferBytes());
                }
                // the optimizer's parameters: owned whole ones and this rank's row blocks
                for (Parameter p : z.ownedParameters().values()) {
                    localSq += Math.pow(p.grad().norm2Number().doubleValue(), 2);
                }
                return new double[] {z.globalGradientNorm(), localSq};
            }
        });
        double[] a = got.get(0);
        double[] b = got.get(1);
        assertEquals(a[0], b[0], 0.0);
        assertEquals(Math.sqrt(a[1] + b[1]), a[0], 1e-6 * a[0]);
    }

    @Test
    void bucketedPathTakesHooksFromSeveralWorkerThreads() throws Exception {
        // step-style ZeRO-2 has no ordering constraint on the hooks: two workers per rank split its 2 rows
        ZeroHarnessTest.Setup s = new ZeroHarnessTest.Setup(2, 4, 1, 4096, DataType.FLOAT, false, 1e-2, 2, 2);
        assertSameAsOneRank(single(s, ADAMW), ranks(s, ZERO2, ADAMW), 1e-5);
    }
}
