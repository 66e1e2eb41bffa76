package dev.collie.parallel;

import dev.collie.core.CollieException;
import dev.collie.core.data.Dataset;
import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import dev.collie.core.tensor.Backends;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.optim.Sgd;
import dev.collie.core.testing.Agreement;
import dev.collie.optim.AdamW;
import dev.collie.parallel.testing.Fixtures;
import dev.collie.parallel.comm.LocalRanks;
import org.junit.jupiter.api.AfterAll;
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
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The oracle: every combination of dp, tp, pp ∈ {1, 2} (with each ZeRO stage that applies) trains
 * the tiny LLaMA for 5 AdamW steps with the losses and final weights of one rank (fp32, ≤ 1e-5).
 * Global batch: micro-batch 2 × grad-accum 2 × dp rows per step, in file order.
 */
@NumericalParity
class ParallelEquivalenceTest {
    private static final Path TINY = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama");
    private static final Path TINY_TIED = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama-tied");
    private static final int STEPS = 5;
    private static final int MICRO = 2;
    private static final int ACCUM = 2;
    /** fp32: losses and AdamW's weights to the design's 1e-5 (see {@link #reference}); float64: both to 1e-12. */
    private static final double LOSS_TOL_FP32 = 1e-5;
    private static final double WEIGHT_TOL_FP32 = 1e-5;
    private static final double TOL_FP64 = 1e-12;
    /**
     * fp32 SGD: the weights move by lr × gradient, so they agree as closely as the fp32 gradients do, plus the
     * rounding of each of the 5 updates: a weight near 1.3 (the norms') is one ulp (1.2e-7) from its neighbour.
     */
    private static final double SGD_WEIGHT_TOL_FP32 = 5e-7;
    private static final Map<String, Reference> REFERENCES = new HashMap<>();

    /** The single-rank run a parallel layout must reproduce. */
    private record Reference(List<Double> losses, List<Double> gradNorms, Map<String, INDArray> weights) {
    }

    @AfterAll
    static void restoreOpThreads() {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }

    static Stream<Arguments> layouts() {
        List<Arguments> out = new ArrayList<>();
        for (int dp = 1; dp <= 2; dp++) {
            for (int tp = 1; tp <= 2; tp++) {
                for (int pp = 1; pp <= 2; pp++) {
                    if (dp * tp * pp == 1) {
                        continue;
                    }
                    int maxZero = dp == 1 ? 0 : pp == 1 ? 3 : 2;
                    for (int zero = 0; zero <= maxZero; zero++) {
                        boolean tied = (dp + tp + pp + zero) % 2 == 0;
                        // ZeRO-2 with stages cannot sum a weight tied across them (refused; tested below)
                        boolean t = tied && !(zero == 2 && pp > 1);
                        out.add(Arguments.of(dp, tp, pp, zero, t, DataType.DOUBLE, "adamw"));
                        out.add(Arguments.of(dp, tp, pp, zero, t, DataType.FLOAT, "adamw"));
                        // SGD moves each weight in proportion to its gradient: fp32 agreement of the gradients shows
                        out.add(Arguments.of(dp, tp, pp, zero, t, DataType.FLOAT, "sgd"));
                    }
                }
            }
        }
        return out.stream();
    }

    private static Dataset rows(int n) {
        return Fixtures.causalRows(n, 12, 96, 7);
    }

    private static CollieConfig config(int microBatch) {
        return CollieConfig.builder().shuffle(false).lr(1e-3).trainMicroBatchSize(microBatch)
                .gradientAccumulationSteps(ACCUM).maxSteps(STEPS).workerThreads(1).clipGradNorm(1.0).build();
    }

    private static final Path FAMILIES = Path.of("../collie-models/src/test/resources/fixtures/families");

    /** The tiny LLaMA (tied or not), or a family's fixture ("family:qwen2") in {@code dtype}. */
    private static DecoderForCausalLM model(String which, DataType dtype) {
        return DecoderCheckpoint.load(which.startsWith("family:") ? FAMILIES.resolve(which.substring(7))
                : which.equals("tied") ? TINY_TIED : TINY, dtype);
    }

    private static String which(boolean tied) {
        return tied ? "tied" : "untied";
    }

    /**
     * One rank with all of a step's rows: micro-batch MICRO × dp, the same rows per step as dp replicas.
     * AdamW with eps 1e-8 moves each element by about lr whatever its gradient's size, so fp32 summation-order
     * noise in near-zero gradients (any change of reduction order) showed as ~lr/100 in the weights (one rank
     * with 2 worker threads against 1: 1.2e-6 to 1.6e-5, depending on the CPU's kernels); with eps above that noise
     * ({@link Agreement#ADAM_EPS_ABOVE_NOISE}) the comparison is well-conditioned, see
     * {@link #noiseFloorOfOneRank()}. In float64 every layout agrees to 1e-12: the parallel arithmetic is exact.
     */
    private static synchronized Reference reference(int dp, String which, DataType dtype, String opt) {
        return REFERENCES.computeIfAbsent(dp + "/" + which + "/" + dtype + "/" + opt,
                k -> train(dp, which, dtype, 1, opt));
    }

    private static Optimizer optimizer(String name, Map<String, Parameter> params) {
        return name.equals("sgd") ? new Sgd(params) : new AdamW(params, 0.9, 0.999, Agreement.ADAM_EPS_ABOVE_NOISE, 0.01);
    }

    private static Reference train(int dp, String which, DataType dtype, int workers, String opt) {
        {
            DecoderForCausalLM m = model(which, dtype);
            List<StepStats> stats = Trainer.builder().model(m).optimizer(optimizer(opt, m.namedParameters()))
                    .config(config(MICRO * dp).toBuilder().workerThreads(workers).build())
                    .trainData(rows(STEPS * MICRO * ACCUM * dp)).build().train();
            Map<String, INDArray> w = new HashMap<>();
            m.namedParameters().forEach((n, p) -> w.put(n, p.data().dup()));
            return new Reference(stats.stream().map(StepStats::loss).toList(),
                    stats.stream().map(StepStats::gradNorm).toList(), w);
        }
    }

    /** The fp32 floor: the same single-rank run with its rows on 2 worker threads instead of 1. */
    @Test
    void noiseFloorOfOneRank() {
        Reference one = train(2, "tied", DataType.FLOAT, 1, "adamw");
        Reference two = train(2, "tied", DataType.FLOAT, 2, "adamw");
        Agreement.within("fp32 one rank, 2 worker threads vs 1: losses", worstLoss(one.losses(), two.losses()),
                LOSS_TOL_FP32);
        Agreement.within("fp32 one rank, 2 worker threads vs 1: weights", Agreement.maxAbsDiff(two.weights(),
                one.weights()), WEIGHT_TOL_FP32);
    }

    @Test
    void zero2WithStagesRefusesATiedEmbedding() throws Exception {
        List<String> messages = LocalRanks.run(4, Duration.ofSeconds(10), 30, c -> {
            try (c) {
                Parallelism.builder().dp(2).pp(2).zero(2).build(c, model("tied", DataType.FLOAT));
                return "built";
            } catch (CollieException e) {
                return e.getMessage();
            }
        });
        for (String m : messages) {
            assertTrue(m.contains("model.embed_tokens.weight") && m.contains("zero stage 2"), m);
        }
    }

    @ParameterizedTest(name = "dp {0} tp {1} pp {2} zero {3} tied {4} {5} {6}")
    @MethodSource("layouts")
    void reproducesOneRank(int dp, int tp, int pp, int zero, boolean tied, DataType dtype, String opt)
            throws Exception {
        String what = String.format("dp %d tp %d pp %d zero %d tied %b %s %s", dp, tp, pp, zero, tied, dtype, opt);
        checkLayout(which(tied), dp, tp, pp, zero, dtype, opt, what);
    }

    /**
     * The other families with fused, sectioned and biased projections, per-head norms, sliding windows and
     * CodeGen's parallel block: InternLM2, ChatGLM, Qwen2 (tied) and MOSS-moon-003 (CodeGen) under every layout with
     * AdamW in float64 and fp32, Qwen3 and Mistral in float64.
     */
    static Stream<Arguments> familyLayouts() {
        List<Arguments> out = new ArrayList<>();
        for (String family : List.of("internlm2", "chatglm", "qwen2", "qwen3", "mistral", "moss-moon")) {
            boolean both = !family.equals("qwen3") && !family.equals("mistral");      // else float64 only
            layouts().map(Arguments::get)
                    .filter(a -> a[6].equals("adamw") && (boolean) a[4] == ((int) a[3] % 2 == 0))
                    .filter(a -> both || a[5] == DataType.DOUBLE)
                    // Qwen2's tied embedding across stages under ZeRO-2 is refused (see below)
                    .filter(a -> !(family.equals("qwen2") && (int) a[3] == 2 && (int) a[2] > 1))
                    .forEach(a -> out.add(Arguments.of(family, a[0], a[1], a[2], a[3], a[5])));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} dp {1} tp {2} pp {3} zero {4} {5}")
    @MethodSource("familyLayouts")
    void everyFamilyReproducesOneRank(String family, int dp, int tp, int pp, int zero, DataType dtype)
            throws Exception {
        checkLayout("family:" + family, dp, tp, pp, zero, dtype, "adamw",
                String.format("%s dp %d tp %d pp %d zero %d %s", family, dp, tp, pp, zero, dtype));
    }

    private void checkLayout(String which, int dp, int tp, int pp, int zero, DataType dtype, String opt, String what)
            throws Exception {
        Reference ref = reference(dp, which, dtype, opt);
        boolean fp64 = dtype == DataType.DOUBLE;
        double lossTol = fp64 ? TOL_FP64 : LOSS_TOL_FP32;
        double weightTol = fp64 ? TOL_FP64 : opt.equals("sgd") ? SGD_WEIGHT_TOL_FP32 : WEIGHT_TOL_FP32;
        int world = dp * tp * pp;
        Object[] lead = LocalRanks.run(world, Duration.ofSeconds(30), 120,
                c -> runRank(c, dp, tp, pp, zero, which, dtype, opt, world)).get(0);
        @SuppressWarnings("unchecked") List<Double> losses = (List<Double>) lead[0];
        @SuppressWarnings("unchecked") Map<String, INDArray> weights = (Map<String, INDArray>) lead[1];
        assertEquals(STEPS, losses.size());
        @SuppressWarnings("unchecked") List<Double> norms = (List<Double>) lead[2];
        double worstNorm = 0;
        for (int s = 0; s < STEPS; s++) {
            worstNorm = Math.max(worstNorm, Math.abs(ref.gradNorms().get(s) - norms.get(s)) / Math.max(1, norms.get(s)));
        }
        Agreement.within(what + ": losses", worstLoss(ref.losses(), losses), lossTol);
        Agreement.within(what + ": gradient norms (relative)", worstNorm, lossTol);
        assertNotNull(weights);
        Agreement.within(what + ": weights", Agreement.maxAbsDiff(weights, ref.weights()), weightTol);
    }

    private static double worstLoss(List<Double> a, List<Double> b) {
        double w = 0;
        for (int i = 0; i < a.size(); i++) {
            w = Math.max(w, Math.abs(a.get(i) - b.get(i)));
        }
        return w;
    }

    private static Object[] runRank(Communicator c, int dp, int tp, int pp, int zero, String which, DataType dtype,
                                    String opt, int world) {
        try (c) {
            DecoderForCausalLM m = model(which, dtype);
            try (Parallelism par = Parallelism.builder().dp(dp).tp(tp).pp(pp).zero(zero).build(c, m)) {
                Map<String, Parameter> owned = par.optimizerParameters();
                Trainer t = par.configure(Trainer.builder()).optimizer(optimizer(opt, owned)).config(config(MICRO))
                        .trainData(rows(STEPS * MICRO * ACCUM * dp)).localRanks(world).build();
                List<StepStats> stats = t.train();
                return new Object[] {stats.stream().map(StepStats::loss).toList(),
                        Fixtures.copies(par.gatherFullWeights()),
                        stats.stream().map(StepStats::gradNorm).toList()};
            }
        }
    }
}
