package dev.collie.parallel.optim;

import dev.collie.core.CollieException;
import dev.collie.core.data.Dataset;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.Sample;
import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.FusedBackwardOptimizer;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.testing.Agreement;
import dev.collie.core.tensor.Backends;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.optim.AdaLomo;
import dev.collie.optim.AdamW;
import dev.collie.optim.Adan;
import dev.collie.optim.Lion;
import dev.collie.optim.Lomo;
import dev.collie.optim.SophiaG;
import dev.collie.parallel.Parallelism;
import dev.collie.parallel.testing.Fixtures;
import dev.collie.parallel.comm.LocalRanks;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The oracle for every optimizer under tensor and pipeline parallelism (with and without data parallelism):
 * each rank builds the same tiny LLaMA, trains it 5 steps through {@link Parallelism} and the Trainer, and
 * the losses and gathered weights must be one rank's. Step optimizers run 2 micro-batches of 2 rows per
 * replica (the pipeline has two in flight) with the Trainer's clipping at 1.0; fused ones (gradient
 * accumulation 1) one micro-batch of 4 rows, the *_CLIP variants with their own two-pass norm clipping
 * (active: the norm is above the threshold at every step, checked). Sophia refreshes its Hessian every 2
 * steps from labels sampled through the runner (the vocabulary-parallel loss, the pipeline schedule). ZeRO-1
 * layouts run the step optimizers, ZeRO-2 ones every optimizer without two-pass clipping.
 *
 * <p>float64: losses and weights to 1e-12: the parallel arithmetic is exact. fp32: losses to 1e-5; weights to
 * 1e-5 with each rule kept well-conditioned ({@link Agreement}): AdamW and Adan with eps above the gradients'
 * summation-order noise, AdaLomo with eps1 above it, LOMO at an lr where the loss falls; the sign-based rules
 * (Lion, Sophia's saturated ratio) with elements whose momentum is within that noise of zero counted, reported and
 * left out, at most {@link #SIGN_FLIP_SHARE} of them.
 */
@NumericalParity
class OptimizerEquivalenceTest {
    private static final Path TINY = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama");
    private static final Path TINY_TIED = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama-tied");
    private static final int STEPS = 5;
    /** Rows per step on each data-parallel replica. */
    private static final int ROWS = 4;
    private static final double TOL_FP64 = 1e-12;
    private static final double LOSS_TOL_FP32 = 1e-5;
    private static final double WEIGHT_TOL_FP32 = 1e-5;
    /** The share of elements a sign-based rule may flip between layouts in fp32 (a flip moves an element by 2·lr). */
    private static final double SIGN_FLIP_SHARE = 1e-3;
    private static final Map<String, Reference> REFERENCES = new HashMap<>();

    /** The optimizers, each with its settings (well-conditioned in fp32, see the class comment). */
    enum Opt {
        ADAMW(false, 1e-3, false, p -> new AdamW(p, 0.9, 0.999, Agreement.ADAM_EPS_ABOVE_NOISE, 0.01)),
        LION(false, 1e-4, true, p -> new Lion(p, 0.9, 0.99, 0.1)),
        ADAN(false, 1e-3, false, p -> new Adan(p, 0.98, 0.92, 0.99, Agreement.ADAM_EPS_ABOVE_NOISE, 0, 0, false)),
        SOPHIA(false, 1e-3, true, p -> new SophiaG(p, 0.965, 0.99, 0.04, 0.1, 5120, 2)),
        LOMO(true, 0.5, false, p -> new Lomo(p, 0, 0, 0.1, null)),
        LOMO_CLIP(true, 0.5, false, p -> new Lomo(p, 0.3, 0.05, 0.1, null)),
        ADALOMO(true, 1e-2, false, p -> new AdaLomo(p, Agreement.ADALOMO_EPS1_ABOVE_NOISE, 1e-3, 1.0, -0.8, 0, 0, 0.1)),
        ADALOMO_CLIP(true, 1e-2, false,
                p -> new AdaLomo(p, Agreement.ADALOMO_EPS1_ABOVE_NOISE, 1e-3, 1.0, -0.8, 0.3, 0.05, 0));

        final boolean fused;
        final double lr;
        /** Steps by the sign of a momentum (fp32 weights compared with its flips left out). */
        final boolean signBased;
        final Function<Map<String, Parameter>, Optimizer> make;

        Opt(boolean fused, double lr, boolean signBased, Function<Map<String, Parameter>, Optimizer> make) {
            this.fused = fused;
            this.lr = lr;
            this.signBased = signBased;
            this.make = make;
        }

        boolean clips() {
            return name().endsWith("_CLIP");
        }
    }

    /** What a run gives back: the lead rank's losses, the whole model's weights, and fused clipping norms. */
    private record Reference(List<Double> losses, Map<String, INDArray> weights, List<Double> gradNorms) {
    }

    @AfterAll
    static void restoreOpThreads() {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }

    /** dp, tp, pp, ZeRO stage */
    private static final int[][] LAYOUTS = {{1, 2, 1, 0}, {1, 1, 2, 0}, {1, 2, 2, 0}, {2, 2, 1, 0}, {2, 1, 2, 0},
        {2, 2, 2, 0}, {2, 2, 1, 1}, {2, 1, 2, 1}, {2, 2, 1, 2}, {2, 1, 2, 2}, {2, 1, 1, 0}};

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (Opt o : Opt.values()) {
            for (int l = 0; l < LAYOUTS.length; l++) {
                int zero = LAYOUTS[l][3];
                if ((zero == 1 && o.fused) || (zero > 0 && o.clips())) {
                    // ZeRO-1 is not for fused optimizers (its DataParallel keeps bucket hooks on the parameters
                    // a replica does not own); two-pass clipping is refused: see zeroRefusesTwoPassClipping
                    continue;
                }
                // half the layouts of each optimizer tie the embedding and the head (both with pipeline stages;
                // ZeRO-2 refuses a weight tied across stages)
                boolean tied = (o.ordinal() + l) % 2 == 0 && !(zero == 2 && LAYOUTS[l][2] > 1);
                for (DataType dt : new DataType[] {DataType.DOUBLE, DataType.FLOAT}) {
                    out.add(Arguments.of(o, LAYOUTS[l][0], LAYOUTS[l][1], LAYOUTS[l][2], LAYOUTS[l][3], tied, dt));
                }
            }
        }
        return out.stream();
    }

    private static Dataset rows(int n) {
        return Fixtures.causalRows(n, 12, 96, 11);
    }

    /** A replica's config: {@code rows} per step in 2 micro-batches (step optimizers) or 1 (fused). */
    private static CollieConfig config(Opt o, int rows) {
        int accum = o.fused ? 1 : 2;
        return CollieConfig.builder().shuffle(false).lr(o.lr).trainMicroBatchSize(rows / accum)
                .gradientAccumulationSteps(accum).maxSteps(STEPS).workerThreads(1)
                .clipGradNorm(o.fused ? 0 : 1.0).build();
    }

    private static DecoderForCausalLM model(boolean tied, DataType dtype) {
        return DecoderCheckpoint.load(tied ? TINY_TIED : TINY, dtype);
    }

    /** One rank with a whole step's rows (every replica's). */
    private static synchronized Reference reference(Opt o, int dp, boolean tied, DataType dtype) {
        return REFERENCES.computeIfAbsent(o + "/" + dp + "/" + tied + "/" + dtype, k -> {
            DecoderForCausalLM m = model(tied, dtype);
            Optimizer opt = o.make.apply(m.namedParameters());
            List<Double> norms = new ArrayList<>();
            List<StepStats> stats = Trainer.builder().model(m).optimizer(opt).config(config(o, ROWS * dp))
                    .trainData(rows(STEPS * ROWS * dp)).callbacks(normRecorder(opt, norms)).build().train();
            Map<String, INDArray> w = new HashMap<>();
            m.namedParameters().forEach((n, p) -> w.put(n, p.data().dup()));
            return new Reference(stats.stream().map(StepStats::loss).toList(), w, norms);
        });
    }

    /** Records a fused optimizer's clipping norm after every step. */
    private static Callback normRecorder(Optimizer opt, List<Double> into) {
        return new Callback() {
            @Override
            public void onBatchEnd(Trainer t, StepStats s) {
                if (opt instanceof Lomo l) {
                    into.add(l.lastGradNorm());
                } else if (opt instanceof AdaLomo a) {
                    into.add(a.lastGradNorm());
                }
            }
        };
    }

    @ParameterizedTest(name = "{0} dp {1} tp {2} pp {3} zero {4} tied {5} {6}")
    @MethodSource("cases")
    void reproducesOneRank(Opt o, int dp, int tp, int pp, int zero, boolean tied, DataType dtype) throws Exception {
        Reference ref = reference(o, dp, tied, dtype);
        boolean fp64 = dtype == DataType.DOUBLE;
        double lossTol = fp64 ? TOL_FP64 : LOSS_TOL_FP32;
        double weightTol = fp64 ? TOL_FP64 : WEIGHT_TOL_FP32;
        Reference got = runRanks(o, dp, tp, pp, zero, tied, dtype);
        assertEquals(STEPS, got.losses().size());
        String what = String.format("%s dp %d tp %d pp %d zero %d %s %s", o, dp, tp, pp, zero, tied ? "tied" : "untied",
                fp64 ? "float64" : "fp32");
        double worstLoss = 0;
        for (int s = 0; s < STEPS; s++) {
            worstLoss = Math.max(worstLoss, Math.abs(ref.losses().get(s) - got.losses().get(s)));
        }
        Agreement.within(what + ": losses", worstLoss, lossTol);
        if (o.clips()) {
            for (int s = 0; s < STEPS; s++) {
                double want = ref.gradNorms().get(s);
                assertTrue(want > 0.3, "the clipping is not active at step " + (s + 1) + " (norm " + want + ")");
                assertEquals(want, got.gradNorms().get(s), lossTol * want, "clipping norm of step " + (s + 1));
            }
        }
        if (o.signBased && !fp64) {
            Agreement.withinLeavingOut(what + ": weights", got.weights(), ref.weights(), weightTol, SIGN_FLIP_SHARE);
        } else {
            Agreement.within(what + ": weights", Agreement.maxAbsDiff(got.weights(), ref.weights()), weightTol);
        }
    }

    private static Reference runRanks(Opt o, int dp, int tp, int pp, int zero, boolean tied, DataType dtype)
            throws Exception {
        int world = dp * tp * pp;
        return LocalRanks.run(world, Duration.ofSeconds(30), 120,
                c -> runRank(c, o, dp, tp, pp, zero, tied, dtype, world)).get(0);
    }

    private static Reference runRank(Communicator c, Opt o, int dp, int tp, int pp, int zero, boolean tied,
                                     DataType dtype, int world) {
        try (c) {
            DecoderForCausalLM m = model(tied, dtype);
            try (Parallelism par = Parallelism.builder().dp(dp).tp(tp).pp(pp).zero(zero).build(c, m)) {
                Optimizer opt = o.make.apply(par.optimizerParameters());
                List<Double> norms = new ArrayList<>();
                Trainer t = par.configure(Trainer.builder()).optimizer(opt).config(config(o, ROWS))
                        .trainData(rows(STEPS * ROWS * dp)).localRanks(world).callbacks(normRecorder(opt, norms))
                        .build();
                List<StepStats> stats = t.train();
                Map<String, INDArray> copy = Fixtures.copies(par.gatherFullWeights());
                // the lead rank first in the list of results: world rank 0 holds the gathered weights
                return c.rank() == 0 ? new Reference(stats.stream().map(StepStats::loss).toList(), copy, norms) : null;
            }
        }
    }

    /**
     * Sophia's sampled labels depend on each row's tokens, not on which thread runs it: one rank with its
     * (unevenly padded) rows split over 2 worker threads refreshes the same Hessian as with 1 (float64).
     */
    @Test
    void sophiaRefreshesTheSameHessianOnOneOrTwoWorkerThreads() {
        List<Sample> samples = new ArrayList<>();
        Random rnd = new Random(5);
        for (int i = 0; i < 12; i++) {
            int[] ids = new int[6 + i % 5];
            for (int j = 0; j < ids.length; j++) {
                ids[j] = rnd.nextInt(96);
            }
            samples.add(Sample.causal(ids));
        }
        List<Map<String, INDArray>> out = new ArrayList<>();
        List<List<Double>> losses = new ArrayList<>();
        for (int workers = 1; workers <= 2; workers++) {
            DecoderForCausalLM m = model(false, DataType.DOUBLE);
            SophiaG opt = new SophiaG(m.namedParameters(), 0.965, 0.99, 0.04, 0.1, 5120, 1);
            List<StepStats> stats = Trainer.builder().model(m).optimizer(opt).config(CollieConfig.builder()
                    .shuffle(false).lr(1e-3).trainMicroBatchSize(4).maxSteps(3).workerThreads(workers).build())
                    .trainData(Datasets.of(samples)).build().train();
            assertEquals(3, opt.hessianUpdates());
            losses.add(stats.stream().map(StepStats::loss).toList());
            Map<String, INDArray> w = new HashMap<>();
            m.namedParameters().forEach((n, p) -> w.put(n, p.data().dup()));
            out.add(w);
        }
        for (int s = 0; s < 3; s++) {
            assertEquals(losses.get(0).get(s), losses.get(1).get(s), TOL_FP64);
        }
        out.get(0).forEach((n, w) -> assertTrue(w.sub(out.get(1).get(n)).amaxNumber().doubleValue() <= TOL_FP64, n));
    }

    /**
     * Still refused: two-pass clipping of a fused optimizer under ZeRO (each replica's optimizer holds only its
     * own parameters' gradients, and the ZeRO reductions take one fused pass per step).
     */
    @Test
    void zeroRefusesTwoPassClipping() {
        Exception e = Assertions.assertThrows(Exception.class,
                () -> runRanks(Opt.LOMO_CLIP, 2, 2, 1, 2, false, DataType.FLOAT));
        assertTrue(String.valueOf(e.getMessage()).contains("which a ZeRO rank does not hold"), e.toString());
    }

    /**
     * A fused-backward optimizer with a norm pass that cannot take a reducer is refused under tensor
     * parallelism (its norm would be this rank's share), with the reason.
     */
    @Test
    void aTwoPassOptimizerWithoutAReducerIsRefused() throws Exception {
        List<String> messages = LocalRanks.run(2, Duration.ofSeconds(10), 30, c -> {
            try (c; Parallelism par = Parallelism.builder().tp(2).build(c, model(false, DataType.FLOAT))) {
                Map<String, Parameter> params = par.optimizerParameters();
                FusedBackwardOptimizer twoPass = new FusedBackwardOptimizer() {
                    public Map<String, Parameter> parameters() { return params; }
                    public void beginStep(double lr) { }
                    public int passes() { return 2; }
                    public void onGradientReady(Parameter p, INDArray g) { p.releaseGrad(); }
                    public Map<String, INDArray> stateDict() { return Map.of(); }
                    public void loadStateDict(Map<String, INDArray> s) { }
                    public long stateBytes() { return 0; }
                };
                par.configure(Trainer.builder()).optimizer(twoPass).config(CollieConfig.builder().maxSteps(1)
                        .build()).trainData(rows(4)).localRanks(2).build();
                return "built";
            } catch (CollieException e) {
                return e.getMessage();
            }
        });
        for (String m : messages) {
            assertTrue(m.contains("takes 2 backward passes") && m.contains("gradient norm"), m);
        }
    }
}
