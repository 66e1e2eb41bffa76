package dev.collie.core.eval;

import com.fasterxml.jackson.databind.JsonNode;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.MetricFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.Map;

import static dev.collie.core.testing.MetricFixtures.PARITY;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class RougeMetricTest {
    private static final String[][] KEYS = {
        {"rouge-1-p", "rouge1_precision"}, {"rouge-1-r", "rouge1_recall"}, {"rouge-1-f", "rouge1_fmeasure"},
        {"rouge-2-p", "rouge2_precision"}, {"rouge-2-r", "rouge2_recall"}, {"rouge-2-f", "rouge2_fmeasure"},
        {"rouge-l-p", "rougeL_precision"}, {"rouge-l-r", "rougeL_recall"}, {"rouge-l-f", "rougeL_fmeasure"},
    };

    /**
     * Every pair alone and the mean over all pairs against torchmetrics' rouge_score (accumulate "best"), with its
     * default normalisation ("rouge") and with str.split and no normalisation ("whitespace"). torchmetrics keeps
     * float32 values, hence differences near 1e-8.
     */
    @ParameterizedTest
    @ValueSource(strings = {"rouge", "whitespace"})
    void matchesTorchmetrics(String tokenizer) {
        JsonNode expected = MetricFixtures.text().get("rouge").get(tokenizer);
        RougeConfig config = new RougeConfig(List.of("rouge-1", "rouge-2", "rouge-l"), TextTokenizer.named(tokenizer));
        List<String> preds = MetricFixtures.predictions();
        List<List<String>> refs = MetricFixtures.references();
        double[] worst = new double[3];
        for (int i = 0; i < preds.size(); i++) {
            RougeMetric m = new RougeMetric(config);
            m.update(EvalBatch.ofTexts(List.of(preds.get(i)), List.of(refs.get(i))));
            compare(m.get(), expected.get("pairs").get(i), worst);
        }
        RougeMetric all = new RougeMetric(config);
        for (int start = 0; start < preds.size(); start += 7) {
            int end = Math.min(start + 7, preds.size());
            all.update(EvalBatch.ofTexts(preds.subList(start, end), refs.subList(start, end)));
        }
        double[] worstMean = new double[3];
        compare(all.get(), expected.get("mean"), worstMean);
        String[] names = {"ROUGE-1", "ROUGE-2", "ROUGE-L"};
        for (int v = 0; v < 3; v++) {
            Agreement.within(names[v] + " P/R/F per pair vs torchmetrics (" + tokenizer + ")", worst[v], PARITY);
            Agreement.within(names[v] + " P/R/F mean vs torchmetrics (" + tokenizer + ")", worstMean[v], PARITY);
        }
    }

    @Test
    void rougeLCountsTheLongestCommonSubsequence() {
        RougeMetric m = new RougeMetric(new RougeConfig(List.of("rouge-l", "rouge-3"), TextTokenizer.WHITESPACE));
        m.update(EvalBatch.ofTexts(List.of("a x b y c d"), List.of(List.of("a b c z d"))));
        Map<String, Double> v = m.get();
        assertEquals(List.of("rouge-l-p", "rouge-l-r", "rouge-l-f", "rouge-3-p", "rouge-3-r", "rouge-3-f"),
                List.copyOf(v.keySet()));
        assertEquals(4.0 / 6, v.get("rouge-l-p"), 1e-15);
        assertEquals(4.0 / 5, v.get("rouge-l-r"), 1e-15);
        assertEquals(2 * (4.0 / 6) * (4.0 / 5) / (4.0 / 6 + 4.0 / 5), v.get("rouge-l-f"), 1e-15);
        assertEquals(0.0, v.get("rouge-3-f"));
    }

    @Test
    void unknownVariantsAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new RougeConfig(List.of("rouge-1", "rouge-w"), TextTokenizer.ROUGE));
        assertEquals("unknown ROUGE variant 'rouge-w'; known: rouge-1 ... rouge-9, rouge-l", e.getMessage());
    }

    private static void compare(Map<String, Double> got, JsonNode expected, double[] worst) {
        for (int k = 0; k < KEYS.length; k++) {
            double d = Math.abs(got.get(KEYS[k][0]) - expected.get(KEYS[k][1]).asDouble());
            worst[k / 3] = Math.max(worst[k / 3], Double.isNaN(d) ? Double.POSITIVE_INFINITY : d);
        }
    }
}
