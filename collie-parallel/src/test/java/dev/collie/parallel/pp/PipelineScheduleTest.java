package dev.collie.parallel.pp;

import dev.collie.core.CollieException;
import dev.collie.core.data.Batch;
import dev.collie.core.dist.Communicator;
import dev.collie.core.optim.Sgd;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.ActivationCheckpointing;
import dev.collie.core.train.StepRunner;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.parallel.comm.LocalCommunicators;
import dev.collie.parallel.testing.Fixtures;
import dev.collie.parallel.testing.OneOpThread;
import dev.collie.parallel.comm.LocalRanks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The 1F1B schedule over in-JVM ranks against the single-rank {@link StepRunner} on the same micro-batches:
 * the tiny LLaMA (hidden 32, 4 heads, 2 KV heads, 4 blocks: 7 pipeline layers) in float64, built from the
 * same seed on every rank.
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
@ExtendWith(OneOpThread.class)
@NumericalParity
class PipelineScheduleTest {
    private static final long SEED = 1234;
    private static final int ROWS = 2;
    private static final int SEQ = 8;
    private static final int HIDDEN = 32;
    private static final double LR = 0.5;
    private static final int STEPS = 3;

    private static DecoderForCausalLM model(boolean tied, DataType dtype) {
        DecoderConfig c = DecoderConfig.builder().vocabSize(64).hiddenSize(HIDDEN).intermediateSize(64).numHiddenLayers(4)
                .numAttentionHeads(4).numKeyValueHeads(2).maxPositionEmbeddings(64).tieWordEmbeddings(tied)
                .initializerRange(0.2).build();
        Nd4j.getRandom().setSeed(SEED);
        return new DecoderForCausalLM(c, dtype);
    }

    /**
     * {@code m} micro-batches of {@link #ROWS}×{@link #SEQ}, fresh arrays on each call; with {@code padded},
     * micro-batch 0 has a right-padded row and micro-batch 1 a left-padded one.
     */
    private static List<Batch> microBatches(int m, boolean padded, long seed) {
        return Fixtures.microBatches(m, ROWS, SEQ, 63, padded, seed);
    }

    private static double maxDiff(INDArray a, INDArray b) {
        return a.sub(b).amaxNumber().doubleValue();
    }

    /** What one rank (or the single-rank reference) saw: losses per step, step-0 gradients, final weights, bytes. */
    private record Run(List<Double> losses, Map<String, INDArray> grads, Map<String, INDArray> weights,
                       List<Long> bytes, List<String> tiedNames, int hookCalls, int trainable) { }

    private static Run reference(boolean tied, int m, boolean padded, DataType dtype) {
        DecoderForCausalLM model = model(tied, dtype);
        Sgd opt = new Sgd(model.namedParameters());
        List<Double> losses = new ArrayList<>();
        Map<String, INDArray> grads = null;
        try (StepRunner runner = new StepRunner(model, 1, 1)) {
            for (int s = 0; s < STEPS; s++) {
                losses.add(runner.forwardBackward(microBatches(m, padded, SEED)));
                if (s == 0) {
                    grads = Fixtures.copies(model.namedParameters(), true);
                }
                opt.step(LR);
            }
        }
        return new Run(losses, grads, Fixtures.copies(model.namedParameters(), false), List.of(), List.of(), 0, 0);
    }

    /** Runs {@code body} on {@code n} fresh ranks, one thread each; fails the test if any throws or they take over 15 s. */
    private static <T> List<T> onRanks(int n, LocalRanks.Body<T> body) throws Exception {
        return LocalRanks.run(n, Duration.ofSeconds(10), 15, body);
    }

    private static List<Run> pipeline(int pp, String method, boolean tied, int m, boolean padded, DataType dtype,
                                      boolean checkpointing) throws Exception {
        return onRanks(pp, comm -> {
            DecoderForCausalLM model = model(tied, dtype);
            ActivationCheckpointing.apply(model, checkpointing);
            PipelineStage stage = PipelineStage.of(model, comm.rank(), pp, method);
            AtomicInteger hookCalls = new AtomicInteger();
            stage.trainableParameters().values().forEach(p -> p.setHook((q, g) -> {
                hookCalls.incrementAndGet();
                return true;
            }));
            Sgd opt = new Sgd(stage.trainableParameters());
            List<Double> losses = new ArrayList<>();
            List<Long> bytes = new ArrayList<>();
            Map<String, INDArray> grads = null;
            try (OneFOneBSchedule schedule = new OneFOneBSchedule(stage, model, comm)) {
                for (int s = 0; s < STEPS; s++) {
                    long before = comm.bytesSent();
                    losses.add(schedule.forwardBackward(microBatches(m, padded, SEED)));
                    bytes.add(comm.bytesSent() - before);
                    schedule.syncTiedGradients();
                    if (s == 0) {
                        grads = Fixtures.copies(stage.trainableParameters(), true);
                    }
                    opt.step(LR);
                }
                return new Run(losses, grads, Fixtures.copies(stage.trainableParameters(), false), bytes,
                        schedule.tiedParameterNames(), hookCalls.get(), stage.trainableParameters().size());
            }
        });
    }

    @ParameterizedTest(name = "pp={0} {1} tied={2} m={3} padded={4}")
    @CsvSource({
        "1, parameters,   true,  2, true",
        "2, parameters,   false, 1, false",
        "2, parameters,   true,  2, true",
        "2, uniform,      false, 4, true",
        "2, type:decoder, true,  4, false",
        "4, type:decoder, true,  1, false",
        "4, parameters,   false, 2, true",
        "4, parameters,   true,  4, true",
        "4, uniform,      false, 4, false",
    })
    void matchesTheSingleRankLossGradientsAndSgdSteps(int pp, String method, boolean tied, int m, boolean padded)
            throws Exception {
        compare(pp, method, tied, m, padded, false);
    }

    @Test
    void gradientCheckpointedBlocksGiveTheSameSteps() throws Exception {
        compare(4, "parameters", true, 4, true, true);
    }

    private static void compare(int pp, String method, boolean tied, int m, boolean padded, boolean checkpointing)
            throws Exception {
        Run ref = reference(tied, m, padded, DataType.DOUBLE);
        List<Run> ranks = pipeline(pp, method, tied, m, padded, DataType.DOUBLE, checkpointing);
        double lossDiff = 0;
        double gradDiff = 0;
        double weightDiff = 0;
        Set<String> seen = new HashSet<>();
        for (int r = 0; r < pp; r++) {
            Run run = ranks.get(r);
            for (int s = 0; s < STEPS; s++) {
                assertEquals(ranks.get(pp - 1).losses().get(s), run.losses().get(s), 0.0, "every stage returns the loss");
                lossDiff = Math.max(lossDiff, Math.abs(ref.losses().get(s) - run.losses().get(s)));
            }
            for (String name : run.grads().keySet()) {
                seen.add(name);
                gradDiff = Math.max(gradDiff, maxDiff(ref.grads().get(name), run.grads().get(name)));
                weightDiff = Math.max(weightDiff, maxDiff(ref.weights().get(name), run.weights().get(name)));
            }
            // each trainable parameter's hook fired once per step, on the last micro-batch
            assertEquals(STEPS * run.trainable(), run.hookCalls(), "hook calls on stage " + r);
            boolean holdsTied = tied && pp > 1 && (r == 0 || r == pp - 1);
            assertEquals(holdsTied ? List.of("model.embed_tokens.weight") : List.of(), run.tiedNames());
        }
        assertEquals(ref.grads().keySet(), seen, "the stages together hold every parameter");
        System.out.printf("pp=%d %s tied=%b m=%d padded=%b checkpointing=%b: loss %.6f, max |Δloss| %.3g,"
                        + " |Δgrad| %.3g, |Δweight| after %d SGD steps %.3g%n", pp, method, tied, m, padded,
                checkpointing, ref.losses().get(0), lossDiff, gradDiff, STEPS, weightDiff);
        assertTrue(lossDiff <= 1e-12, "loss differs by " + lossDiff);
        assertTrue(gradDiff <= 1e-10, "gradient differs by " + gradDiff);
        assertTrue(weightDiff <= 1e-10, "weights differ by " + weightDiff);
        assertTrue(ref.losses().get(STEPS - 1) < ref.losses().get(0), "SGD lowers the loss");
    }

    @Test
    void stagesRunWarmUpForwardsThenOneForwardOneBackwardThenDrain() throws Exception {
        int pp = 4;
        List<List<String>> traces = onRanks(pp, comm -> {
            DecoderForCausalLM model = model(false, DataType.DOUBLE);
            List<String> order = new ArrayList<>();
            try (OneFOneBSchedule schedule = new OneFOneBSchedule(PipelineStage.of(model, comm.rank(), pp, "uniform"),
                    comm)) {
                schedule.traceTo(order);
                schedule.forwardBackward(microBatches(6, false, 3));
                order.add("|");
                schedule.forwardBackward(microBatches(2, false, 4));
            }
            return order;
        });
        assertEquals(List.of("F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5 | F0 F1 B0 B1",
                        "F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 B4 B5 | F0 F1 B0 B1",
                        "F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 B5 | F0 F1 B0 B1",
                        "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5 | F0 B0 F1 B1"),
                traces.stream().map(t -> String.join(" ", t)).toList());
    }

    @Test
    void everyStageSendsOneActivationAndOneGradientPerMicroBatch() throws Exception {
        int pp = 4;
        int m = 4;
        Run ref = reference(false, m, true, DataType.FLOAT);
        List<Run> ranks = pipeline(pp, "parameters", false, m, true, DataType.FLOAT, false);
        long activation = (long) ROWS * SEQ * HIDDEN * 4;        // fp32
        for (int r = 0; r < pp; r++) {
            for (int s = 0; s < STEPS; s++) {
                long expected = (r < pp - 1 ? m * activation : 0)     // activations forward
                        + (r > 0 ? m * activation : 0)                 // input gradients back
                        + (r != pp - 2 ? 8 : 0)                        // the loss, along the chain 3 → 0 → 1 → 2
                        + (s == 0 && r < pp - 1 ? 16 : 0);             // the link's header, once
                long sent = ranks.get(r).bytes().get(s);
                System.out.printf("stage %d step %d: %d bytes sent = %.1f per micro-batch; activation and gradient"
                        + " %d bytes each (rows·seq·hidden·4)%n", r, s, sent, (double) sent / m, activation);
                assertEquals(expected, sent, "bytes sent by stage " + r + " in step " + s);
            }
            assertEquals(ref.losses().get(0), ranks.get(r).losses().get(0), 1e-6);
        }
    }

    @Test
    void evaluationLossIsTheSingleRankLossOnEveryStage() throws Exception {
        Batch probe = microBatches(2, true, 99).get(0);
        double expected;
        try (StepRunner runner = new StepRunner(model(true, DataType.DOUBLE), 1, 1)) {
            expected = runner.loss(probe);
        }
        List<double[]> got = onRanks(4, comm -> {
            DecoderForCausalLM model = model(true, DataType.DOUBLE);
            try (OneFOneBSchedule schedule = new OneFOneBSchedule(PipelineStage.of(model, comm.rank(), 4, "parameters"),
                    comm)) {
                Batch b = microBatches(2, true, 99).get(0);
                double first = schedule.loss(b);
                // evaluation between training steps leaves the training links as they were
                schedule.forwardBackward(microBatches(2, false, 5));
                schedule.syncTiedGradients();
                return new double[] {first, schedule.loss(microBatches(2, true, 99).get(0))};
            }
        });
        for (double[] g : got) {
            assertEquals(expected, g[0], 1e-12);
            assertEquals(expected, g[1], 1e-12);
        }
    }

    @Test
    void stagesNameTheirParametersAsHuggingFaceDoes() {
        DecoderForCausalLM model = model(true, DataType.FLOAT);
        PipelineStage first = PipelineStage.of(model, 0, 2, "parameters");
        PipelineStage last = PipelineStage.of(model, 1, 2, "parameters");
        assertArrayEquals(new int[] {0, 3, 7}, first.bounds());
        assertTrue(first.isFirst() && !first.isLast() && last.isLast() && !last.isFirst());
        assertEquals(List.of("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"),
                new ArrayList<>(first.parameters().keySet()).subList(0, 2));
        List<String> lastNames = new ArrayList<>(last.parameters().keySet());
        assertEquals(List.of("model.layers.2.self_attn.q_proj.weight"), lastNames.subList(0, 1));
        assertEquals(List.of("model.norm.weight", "model.embed_tokens.weight"),
                lastNames.subList(lastNames.size() - 2, lastNames.size()));
        // the tied table is the same parameter object in this (whole) model
        assertTrue(first.parameters().get("model.embed_tokens.weight") == last.parameters().get("model.embed_tokens.weight"));
        int total = first.parameters().size() + last.parameters().size() - 1;
        assertEquals(model.namedParameters().size(), total);
        // frozen parameters are not trainable
        first.parameters().get("model.layers.0.input_layernorm.weight").setTrainable(false);
        assertNull(first.trainableParameters().get("model.layers.0.input_layernorm.weight"));
        assertEquals(first.parameters().size() - 1, first.trainableParameters().size());
    }

    @Test
    void aSilentPeerMakesTheOtherStageFailWithinTheTimeout() throws Exception {
        Duration timeout = Duration.ofSeconds(2);
        for (int silent = 0; silent < 2; silent++) {
            int live = 1 - silent;
            List<Communicator> comms = LocalCommunicators.create(2, timeout);
            try {
                DecoderForCausalLM model = model(false, DataType.DOUBLE);
                OneFOneBSchedule schedule = new OneFOneBSchedule(PipelineStage.of(model, live, 2, "parameters"),
                        comms.get(live));
                long t0 = System.nanoTime();
                // the silent stage never calls in: the first stage waits for a gradient, the last for an activation
                CollieException e = assertThrows(CollieException.class,
                        () -> schedule.forwardBackward(microBatches(2, false, 1)));
                double sec = (System.nanoTime() - t0) / 1e9;
                System.out.println("stage " + live + " failed after " + sec + " s: " + e.getMessage());
                assertTrue(e.getMessage().contains("pipeline stage " + live + " of 2")
                        && e.getMessage().contains("rank " + silent) && e.getMessage().contains("timeout"),
                        e.getMessage());
                assertTrue(sec < timeout.toSeconds() + 1.5, "took " + sec + " s");
            } finally {
                comms.forEach(Communicator::close);
            }
        }
    }

    @Test
    void aStageThatDiesMakesItsPeersFailInsteadOfHanging() throws Exception {
        List<Communicator> comms = LocalCommunicators.create(3, Duration.ofSeconds(2));
        long t0 = System.nanoTime();
        List<Throwable> failures = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(3);
        try {
            List<Future<Throwable>> fs = new ArrayList<>();
            for (Communicator c : comms) {
                fs.add(pool.submit(() -> {
                    try {
                        DecoderForCausalLM model = model(false, DataType.DOUBLE);
                        OneFOneBSchedule schedule = new OneFOneBSchedule(
                                PipelineStage.of(model, c.rank(), 3, "parameters"), c);
                        List<Batch> micro = microBatches(4, false, 1);
                        if (c.rank() == 1) {
                            // the middle stage dies after its first step; the others go on to a second
                            schedule.forwardBackward(micro);
                            throw new IllegalStateException("stage 1 crashed");
                        }
                        schedule.forwardBackward(micro);
                        schedule.forwardBackward(micro);
                        return null;
                    } catch (Throwable t) {
                        return t;
                    }
                }));
            }
            for (Future<Throwable> f : fs) {
                failures.add(f.get(15, TimeUnit.SECONDS));
            }
        } finally {
            pool.shutdownNow();
            comms.forEach(Communicator::close);
        }
        double sec = (System.nanoTime() - t0) / 1e9;
        System.out.println("after " + sec + " s: " + failures);
        assertTrue(failures.get(0) instanceof CollieException, String.valueOf(failures.get(0)));
        assertTrue(failures.get(2) instanceof CollieException, String.valueOf(failures.get(2)));
        assertTrue(failures.get(0).getMessage().contains("pipeline stage 0 of 3"), failures.get(0).getMessage());
        assertTrue(failures.get(2).getMessage().contains("pipeline stage 2 of 3"), failures.get(2).getMessage());
    }
}
