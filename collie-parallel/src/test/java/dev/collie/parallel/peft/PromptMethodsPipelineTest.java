package dev.collie.parallel.peft;

import dev.collie.core.data.Batch;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Sgd;
import dev.collie.core.train.StepRunner;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.parallel.pp.OneFOneBSchedule;
import dev.collie.parallel.pp.PipelineStage;
import dev.collie.parallel.testing.Fixtures;
import dev.collie.parallel.testing.OneOpThread;
import dev.collie.peft.Peft;
import dev.collie.peft.PeftModel;
import dev.collie.peft.VirtualTokenLayer;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prefix tuning, prompt tuning and P-tuning cut into pipeline stages, at the level of the 1F1B schedule, against the
 * single-rank {@link StepRunner} on the same padded micro-batches (a right-padded and a left-padded row), in float64:
 * losses, step-0 gradients (after the stages' sum of the shared ones), weights after SGD steps, the evaluation loss.
 * Also where the encoders live (prompt: the first stage's virtual-token layer; prefix: every stage, summed like a
 * tied weight), what the shared sums send, and the activation messages of the longer prompt sequences.
 */
@ExtendWith(OneOpThread.class)
class PromptMethodsPipelineTest {
    private static final Path TINY = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama");
    private static final Path TINY_TIED = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama-tied");
    private static final int ROWS = 2;
    private static final int SEQ = 10;
    private static final int HIDDEN = 32;
    private static final int MICRO = 3;
    private static final int STEPS = 3;
    private static final double LR = 0.05;

    private static PeftModel model(String method, boolean tied) {
        PeftModel m = Peft.wrap(DecoderCheckpoint.load(tied ? TINY_TIED : TINY, DataType.DOUBLE),
                PeftParallelEquivalenceTest.config(method));
        new TreeMap<>(Peft.trainableNamedParameters(m)).forEach((name, p) -> {
            Random rnd = new Random(name.hashCode());
            double[] v = new double[(int) p.numel()];
            for (int i = 0; i < v.length; i++) {
                v[i] = rnd.nextGaussian() * 0.5;
            }
            p.data().assign(Nd4j.create(v, p.shape(), 'c'));
        });
        return m;
    }

    /** Micro-batches of ROWS×SEQ; micro-batch 0 has a right-padded row, micro-batch 1 a left-padded one. */
    private static List<Batch> microBatches(long seed) {
        return Fixtures.microBatches(MICRO, ROWS, SEQ, 95, true, seed);
    }

    private static double maxDiff(INDArray a, INDArray b) {
        return a.sub(b).amaxNumber().doubleValue();
    }

    /** One rank's (or the reference's) view. */
    private record Run(List<Double> losses, Map<String, INDArray> grads, Map<String, INDArray> weights, double eval,
                       List<List<String>> stageNames, List<String> shared, List<Long> pipeBytes,
                       List<Long> sharedBytes) { }

    private static Run reference(String method, boolean tied) {
        PeftModel m = model(method, tied);
        Map<String, Parameter> trainable = Peft.trainableNamedParameters(m);
        Sgd opt = new Sgd(trainable);
        List<Double> losses = new ArrayList<>();
        Map<String, INDArray> grads = null;
        double eval;
        try (StepRunner runner = new StepRunner(m, 1, 1)) {
            for (int s = 0; s < STEPS; s++) {
                losses.add(runner.forwardBackward(microBatches(11 + s)));
                if (s == 0) {
                    grads = Fixtures.copies(trainable, true);
                }
                opt.step(LR);
                m.module().zeroGrad();
            }
            eval = runner.loss(microBatches(99).get(0));
        }
        return new Run(losses, grads, Fixtures.copies(trainable, false), eval, List.of(), List.of(), List.of(), List.of());
    }

    private static List<Run> pipeline(String method, boolean tied, int pp) throws Exception {
        return Ranks.run(pp, 60, c -> {
            PeftModel m = model(method, tied);
            PipelineStage stage = PipelineStage.of(m, c.rank(), pp, "parameters");
            List<List<String>> names = new ArrayList<>();
            for (int s = 0; s < pp; s++) {
                names.add(new ArrayList<>(stage.parametersOf(s).keySet()));
            }
            Sgd opt = new Sgd(stage.trainableParameters());
            List<Double> losses = new ArrayList<>();
            List<Long> pipeBytes = new ArrayList<>();
            List<Long> sharedBytes = new ArrayList<>();
            Map<String, INDArray> grads = null;
            try (OneFOneBSchedule schedule = new OneFOneBSchedule(stage, m, c)) {
                for (int s = 0; s < STEPS; s++) {
                    long before = c.bytesSent();
                    losses.add(schedule.forwardBackward(microBatches(11 + s)));
                    pipeBytes.add(c.bytesSent() - before);
                    long shared = schedule.sharedGradientBytesSent();
                    schedule.syncTiedGradients();
                    sharedBytes.add(schedule.sharedGradientBytesSent() - shared);
                    if (s == 0) {
                        grads = Fixtures.copies(stage.trainableParameters(), true);
                    }
                    opt.step(LR);
                    stage.trainableParameters().values().forEach(Parameter::zeroGrad);
                }
                double eval = schedule.loss(microBatches(99).get(0));
                return new Run(losses, grads, Fixtures.copies(stage.trainableParameters(), false), eval, names,
                        schedule.tiedParameterNames(), pipeBytes, sharedBytes);
            }
        });
    }

    @ParameterizedTest(name = "{0} pp {1} tied {2}")
    @CsvSource({
        "prompt,            2, false",
        "prompt,            3, true",
        "p-tuning,          2, true",
        "p-tuning,          3, false",
        "prefix,            2, false",
        "prefix,            3, true",
        "prefix-projection, 2, true",
        "prefix-projection, 3, false",
    })
    void stagesTrainTheAdapterAsOneRankDoes(String method, int pp, boolean tied) throws Exception {
        Run ref = reference(method, tied);
        List<Run> ranks = pipeline(method, tied, pp);
        PeftModel probe = model(method, tied);
        List<String> encoder = new ArrayList<>(Peft.trainableNamedParameters(probe).keySet());
        boolean prefix = method.startsWith("prefix");
        long encoderBytes = 0;
        for (Parameter p : probe.promptEncoder().parameters()) {
            encoderBytes += p.numel() * 8;
        }
        // prompt / P-tuning: the first layer is the embedding with the virtual tokens; prefix: the base's layers
        assertEquals(!prefix, probe.pipelineLayers().get(0) instanceof VirtualTokenLayer);
        assertEquals(probe.base().pipelineLayers().size(), probe.pipelineLayers().size());
        double lossDiff = 0;
        double gradDiff = 0;
        double weightDiff = 0;
        double evalDiff = 0;
        List<String> seen = new ArrayList<>();
        for (int r = 0; r < pp; r++) {
            Run run = ranks.get(r);
            for (int s = 0; s < STEPS; s++) {
                lossDiff = Math.max(lossDiff, Math.abs(ref.losses().get(s) - run.losses().get(s)));
            }
            evalDiff = Math.max(evalDiff, Math.abs(ref.eval() - run.eval()));
            for (String n : run.grads().keySet()) {
                if (!seen.contains(n)) {
                    seen.add(n);
                }
                gradDiff = Math.max(gradDiff, maxDiff(ref.grads().get(n), run.grads().get(n)));
                weightDiff = Math.max(weightDiff, maxDiff(ref.weights().get(n), run.weights().get(n)));
            }
            // where the encoder lives: every stage (prefix) or the first (the virtual-token layer)
            for (int s = 0; s < pp; s++) {
                boolean holds = run.stageNames().get(s).containsAll(encoder);
                assertEquals(prefix || s == 0, holds, "stage " + s + " holding " + encoder);
            }
            assertEquals(prefix ? encoder : List.of(), run.shared(), "weights stage " + r + " shares");
            // the stages' sum of the shared encoder: one ring all-reduce of each of its tensors per step
            for (int s = 0; s < STEPS; s++) {
                long sent = run.sharedBytes().get(s);
                if (!prefix) {
                    assertEquals(0, sent);
                } else if (pp == 2) {
                    assertEquals(encoderBytes, sent, "2(n-1)/n of the encoder's bytes, n = 2");
                }
                if (r == 0 && s == 0) {
                    System.out.printf("%s pp %d: the shared-parameter sum sends %d B per stage and step (encoder %d B)%n",
                            method, pp, sent, encoderBytes);
                }
            }
            // one activation and one gradient of rows·(virtual + seq)·hidden per micro-batch and link
            long activation = (long) ROWS * (probe.virtualTokens() + SEQ) * HIDDEN * 8;
            for (int s = 0; s < STEPS; s++) {
                long expected = (r < pp - 1 ? MICRO * activation : 0) + (r > 0 ? MICRO * activation : 0)
                        + (r != pp - 2 ? 8 : 0)                     // the loss, broadcast from the last stage
                        + (s == 0 && r < pp - 1 ? 16 : 0);          // the link's header, once
                assertEquals(expected, run.pipeBytes().get(s), "bytes sent by stage " + r + " in step " + s);
            }
        }
        assertEquals(new TreeMap<>(ref.grads()).keySet(), new TreeSet<>(seen),
                "the stages together train the whole adapter");
        System.out.printf("%s pp %d tied %b: max |Δloss| %.2e, |Δgrad| %.2e, |Δweight| after %d SGD steps %.2e,"
                + " |Δeval loss| %.2e%n", method, pp, tied, lossDiff, gradDiff, STEPS, weightDiff, evalDiff);
        assertTrue(lossDiff <= 1e-12, "loss differs by " + lossDiff);
        assertTrue(gradDiff <= 1e-12, "gradient differs by " + gradDiff);
        assertTrue(weightDiff <= 1e-12, "weights differ by " + weightDiff);
        assertTrue(evalDiff <= 1e-12, "evaluation loss differs by " + evalDiff);
        assertTrue(ref.losses().get(STEPS - 1) < ref.losses().get(0) + 1, "sanity");
    }
}
