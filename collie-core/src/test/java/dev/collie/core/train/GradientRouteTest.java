package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.data.Collator;
import dev.collie.core.data.DataLoader;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.FusedBackwardOptimizer;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.optim.Sgd;
import dev.collie.core.testing.ToyLanguageModel;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each parameter's route from backward to the optimizer, composed from a (recording) {@link Distributed}. */
class GradientRouteTest {
    private static final int VOCAB = 16;
    private static final String EMBED = "embed.weight";
    private static final String HEAD = "head.weight";

    /** Two replicas that agree on everything: the reduction records what reached it and leaves values as they are. */
    private static class TwoReplicas implements Distributed, Distributed.Reduction {
        final List<String> events = new ArrayList<>();
        final Map<String, Parameter> named;
        int finished;
        boolean splits;
        boolean shardsState;
        boolean shardsGrads;
        List<Parameter> shared = List.of();

        TwoReplicas(Map<String, Parameter> named) {
            this.named = named;
        }

        String name(Parameter p) {
            return named.entrySet().stream().filter(e -> e.getValue() == p).findFirst().orElseThrow().getKey();
        }

        @Override public int replicas() { return 2; }
        @Override public Collection<Parameter> routedParameters() { return named.values(); }
        @Override public Reduction reduction() { return this; }
        @Override public Collection<Parameter> sharedAcrossStages() { return shared; }
        @Override public boolean splitsParameters() { return splits; }
        @Override public boolean shardsOptimizerState() { return shardsState; }
        @Override public boolean shardsGradients() { return shardsGrads; }
        @Override public void finishReduction() { finished++; }

        @Override
        public void sumSharedGradients() {
            shared.forEach(p -> events.add("sum " + name(p)));
        }

        @Override
        public boolean launch(Parameter p, INDArray grad) {
            events.add("launch " + name(p));
            return true;
        }

        @Override
        public void reduceNow(Parameter p, INDArray grad) {
            events.add("reduce " + name(p));
        }
    }

    /** Plain SGD applied inside backward, recording each update. */
    private static final class FusedSgd implements FusedBackwardOptimizer {
        private final Map<String, Parameter> params;
        private final TwoReplicas log;
        private final int passes;

        FusedSgd(Map<String, Parameter> params, TwoReplicas log, int passes) {
            this.params = params;
            this.log = log;
            this.passes = passes;
        }

        @Override public Map<String, Parameter> parameters() { return params; }
        @Override public void beginStep(double lr) { }
        @Override public int passes() { return passes; }
        @Override public Map<String, INDArray> stateDict() { return Map.of(); }
        @Override public void loadStateDict(Map<String, INDArray> state) { }
        @Override public long stateBytes() { return 0; }

        @Override
        public void onGradientReady(Parameter p, INDArray grad) {
            if (log != null) {
                log.events.add("update " + log.name(p));
            }
            p.data().subi(grad.mul(0.1));
            p.releaseGrad();
        }
    }

    private static ToyLanguageModel model() {
        return new ToyLanguageModel(VOCAB, 4, DataType.DOUBLE, 3);
    }

    private static void backward(ToyLanguageModel m) {
        DataLoader loader = DataLoader.builder(ToyLanguageModel.rows(4, 6, VOCAB, 1), new Collator(0, false))
                .microBatchSize(2).shuffle(false).build();
        try (StepRunner runner = new StepRunner(m, 1, 1)) {
            runner.forwardBackward(loader.step(0, 0));
        }
    }

    @Test
    void stepOptimizersLaunchEveryGradientOnceAndFinishingWaitsForTheReduction() {
        ToyLanguageModel m = model();
        TwoReplicas dist = new TwoReplicas(m.namedParameters());
        GradientRoute route = GradientRoute.compose(dist, new Sgd(m.namedParameters()));
        backward(m);
        assertEquals(3, dist.events.size(), dist.events.toString());
        assertTrue(dist.events.containsAll(List.of("launch " + EMBED, "launch " + HEAD, "launch head.bias")),
                dist.events.toString());
        m.namedParameters().values().forEach(p -> assertNotNull(p.grad(), "kept for the step"));
        assertEquals(0, dist.finished);
        route.finishBackward();
        assertEquals(1, dist.finished);
    }

    @Test
    void fusedUpdatesFollowTheReductionAndReplicasThatDoNotUpdateDropTheGradient() {
        ToyLanguageModel m = model();
        TwoReplicas dist = new TwoReplicas(m.namedParameters());
        dist.shardsState = true;
        dist.shardsGrads = true;            // ZeRO-2: this replica updates the head only
        Parameter embed = m.namedParameters().get(EMBED);
        INDArray before = embed.data().dup();
        GradientRoute.compose(dist, new FusedSgd(Map.of(HEAD, m.namedParameters().get(HEAD)), dist, 1));
        backward(m);
        int reduced = dist.events.indexOf("reduce " + HEAD);
        assertTrue(reduced >= 0 && dist.events.indexOf("update " + HEAD) == reduced + 1, dist.events.toString());
        assertTrue(dist.events.contains("reduce " + EMBED) && !dist.events.contains("update " + EMBED),
                dist.events.toString());
        assertNull(embed.grad());
        assertEquals(0, embed.gradientBufferBytes(), "a replica that does not update it keeps no gradient");
        assertEquals(0, embed.data().sub(before).amaxNumber().doubleValue(), 0);
    }

    @Test
    void aWeightSharedWithOtherStagesTakesItsRouteOnlyAfterTheStagesSum() {
        ToyLanguageModel m = model();
        TwoReplicas dist = new TwoReplicas(m.namedParameters());
        Parameter head = m.namedParameters().get(HEAD);
        dist.shared = List.of(head);
        GradientRoute route = GradientRoute.compose(dist, new FusedSgd(m.namedParameters(), dist, 1));
        backward(m);
        assertTrue(!dist.events.contains("reduce " + HEAD) && dist.events.contains("update " + EMBED),
                dist.events.toString());
        assertNotNull(head.grad(), "held for the stages' sum");
        route.finishBackward();
        int sum = dist.events.indexOf("sum " + HEAD);
        assertTrue(sum >= 0 && dist.events.subList(sum, dist.events.size())
                .equals(List.of("sum " + HEAD, "reduce " + HEAD, "update " + HEAD)), dist.events.toString());
        assertNull(head.grad());
        assertEquals(0, dist.finished, "a fused step has no bucketed reduction to wait for");
    }

    @Test
    void aLaterRouteReplacesTheEarlierOne() {
        ToyLanguageModel m = model();
        GradientRoute.compose(Distributed.SINGLE, new FusedSgd(m.namedParameters(), null, 1));
        GradientRoute.compose(Distributed.SINGLE, new Sgd(m.namedParameters()));
        backward(m);
        m.namedParameters().values().forEach(p -> assertNotNull(p.grad(), "kept: no fused hook left behind"));
    }

    @Test
    void combinationsThatCannotTrainAreRefusedBeforeAnyBackward() {
        ToyLanguageModel m = model();
        TwoReplicas split = new TwoReplicas(m.namedParameters());
        split.splits = true;
        TwoReplicas zero1 = new TwoReplicas(m.namedParameters());
        zero1.shardsState = true;
        TwoReplicas zero2 = new TwoReplicas(m.namedParameters());
        zero2.shardsState = true;
        zero2.shardsGrads = true;
        assertRefused(split, new FusedSgd(m.namedParameters(), null, 1), CollieConfig.defaults(), "row blocks");
        assertRefused(zero1, new FusedSgd(m.namedParameters(), null, 1), CollieConfig.defaults(), "ZeRO-1");
        assertRefused(zero2, new FusedSgd(m.namedParameters(), null, 2), CollieConfig.defaults(),
                "which a ZeRO rank does not hold");
        assertRefused(Distributed.SINGLE, new FusedSgd(m.namedParameters(), null, 1),
                CollieConfig.builder().gradientAccumulationSteps(2).build(), "gradient_accumulation_steps = 2");
        assertRefused(Distributed.SINGLE, new FusedSgd(m.namedParameters(), null, 1),
                CollieConfig.builder().clipGradNorm(1.0).build(), "clip_grad_norm = 1.0");
        // the same fused optimizer on one replica, and a step optimizer under ZeRO-1, are fine
        GradientRoute.compose(Distributed.SINGLE, new FusedSgd(m.namedParameters(), null, 2), CollieConfig.defaults());
        GradientRoute.compose(zero1, new Sgd(m.namedParameters()), CollieConfig.defaults());
    }

    private static void assertRefused(Distributed d, Optimizer o, CollieConfig c, String says) {
        CollieException e = assertThrows(CollieException.class, () -> GradientRoute.compose(d, o, c));
        assertTrue(e.getMessage().contains(says), e.getMessage());
    }
}
