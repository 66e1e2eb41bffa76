package dev.collie.parallel.dp;

import com.fasterxml.jackson.databind.JsonNode;
import dev.collie.core.eval.AccuracyMetric;
import dev.collie.core.eval.BleuConfig;
import dev.collie.core.eval.BleuMetric;
import dev.collie.core.eval.BleuSmoothing;
import dev.collie.core.eval.ClassificationMetric;
import dev.collie.core.eval.DecodeMetric;
import dev.collie.core.eval.EvalBatch;
import dev.collie.core.eval.Metric;
import dev.collie.core.eval.PerplexityMetric;
import dev.collie.core.eval.RougeMetric;
import dev.collie.core.eval.TextTokenizer;
import dev.collie.core.testing.MetricFixtures;
import dev.collie.parallel.comm.LocalRanks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every metric's {@code gather} over data-parallel ranks (in-JVM) gives what one rank gives over all the batches:
 * the statistics are summed, so counts agree exactly and sums of per-sentence scores to rounding. The batches are
 * the fixtures of collie-core's metric tests, cut into contiguous blocks per rank (one cut leaves a rank without
 * data; the classification batches give the ranks different numbers of classes).
 */
@Timeout(60)
class MetricGatherTest {
    private static final Duration T = Duration.ofSeconds(20);

    static Stream<Arguments> metrics() {
        Supplier<Metric> microBleu = () -> new BleuMetric(new BleuConfig(4, BleuSmoothing.METHOD1,
                BleuConfig.Average.MICRO, TextTokenizer.SACREBLEU_13A));
        Supplier<Metric> macroBleu = () -> new BleuMetric(new BleuConfig(4, BleuSmoothing.METHOD2,
                BleuConfig.Average.MACRO, TextTokenizer.WHITESPACE));
        List<Arguments> out = new ArrayList<>();
        for (int[] cut : new int[][] {{1, 3}, {2, 4}}) {
            out.add(Arguments.of("bleu micro", microBleu, texts(), cut));
            out.add(Arguments.of("bleu macro", macroBleu, texts(), cut));
            out.add(Arguments.of("rouge", (Supplier<Metric>) RougeMetric::new, texts(), cut));
            out.add(Arguments.of("accuracy", (Supplier<Metric>) AccuracyMetric::new, labels(), cut));
            out.add(Arguments.of("f1", (Supplier<Metric>) ClassificationMetric::new, labels(), cut));
            out.add(Arguments.of("perplexity", (Supplier<Metric>) PerplexityMetric::new, losses(), cut));
        }
        return out.stream();
    }

    /**
     * @param cut the first batch of rank 1 and of rank 2 (as fractions of four: {1, 3} gives ranks a quarter, a
     *            half and a quarter; {2, 4} gives rank 2 nothing)
     */
    @ParameterizedTest(name = "{0}, cut {3}")
    @MethodSource("metrics")
    void gatheredOverThreeRanksEqualsOneRankOverAll(String name, Supplier<Metric> kind, List<EvalBatch> batches,
                                                    int[] cut) {
        Metric one = kind.get();
        batches.forEach(one::update);
        Map<String, Double> expected = one.get();
        List<Map<String, Double>> got = LocalRanks.run(3, T, c -> {
            Metric m = kind.get();
            share(batches, cut, c.rank()).forEach(m::update);
            m.gather(c);
            return m.get();
        });
        for (Map<String, Double> g : got) {
            assertEquals(expected.keySet(), g.keySet(), name);
            for (String k : expected.keySet()) {
                assertTrue(Math.abs(g.get(k) - expected.get(k)) <= 1e-12 * Math.max(1, Math.abs(expected.get(k))),
                        name + " " + k + ": " + g.get(k) + " gathered, " + expected.get(k) + " on one rank");
            }
        }
        assertEquals(got.get(0), got.get(1), name + ": every rank gets the same values");
        assertEquals(got.get(0), got.get(2), name + ": every rank gets the same values");
    }

    @Test
    void decodeGathersEveryRanksPredictionsInRankOrder() {
        List<EvalBatch> batches = texts();
        DecodeMetric one = new DecodeMetric(null, false);
        batches.forEach(one::update);
        for (int[] cut : new int[][] {{1, 3}, {2, 4}}) {
            List<List<String>> got = LocalRanks.run(3, T, c -> {
                DecodeMetric m = new DecodeMetric(null, false);
                share(batches, cut, c.rank()).forEach(m::update);
                m.gather(c);
                assertEquals((double) one.lines().size(), m.get().get("decoded"));
                return m.lines();
            });
            for (List<String> lines : got) {
                assertEquals(one.lines(), lines, "cut " + Arrays.toString(cut));
            }
        }
    }

    /** Rank {@code rank}'s contiguous block of {@code batches}. */
    private static List<EvalBatch> share(List<EvalBatch> batches, int[] cut, int rank) {
        int n = batches.size();
        int[] at = {0, cut[0] * n / 4, cut[1] * n / 4, n};
        return batches.subList(at[rank], at[rank + 1]);
    }

    /** The prediction/reference pairs of the metric fixtures in batches of four. */
    private static List<EvalBatch> texts() {
        List<String> preds = MetricFixtures.predictions();
        List<List<String>> refs = MetricFixtures.references();
        List<EvalBatch> out = new ArrayList<>();
        for (int start = 0; start < preds.size(); start += 4) {
            int end = Math.min(start + 4, preds.size());
            out.add(EvalBatch.ofTexts(preds.subList(start, end), refs.subList(start, end)));
        }
        return out;
    }

    /** The classification fixture as eight [1, 5] batches with its mask (class 4 is predicted in some only). */
    private static List<EvalBatch> labels() {
        JsonNode f = MetricFixtures.classification();
        List<EvalBatch> out = new ArrayList<>();
        for (int b = 0; b < 8; b++) {
            out.add(EvalBatch.ofLabels(row(f.get("pred"), b), row(f.get("target"), b), row(f.get("mask"), b)));
        }
        return out;
    }

    private static INDArray row(JsonNode values, int b) {
        long[][] r = new long[1][5];
        for (int i = 0; i < 5; i++) {
            r[0][i] = values.get(5 * b + i).asLong();
        }
        return Nd4j.createFromArray(r);
    }

    private static List<EvalBatch> losses() {
        List<EvalBatch> out = new ArrayList<>();
        for (int b = 0; b < 8; b++) {
            out.add(EvalBatch.ofLoss(0.37 * (b + 1) * (b % 3 + 1), 3L + b % 4));
        }
        return out;
    }
}
