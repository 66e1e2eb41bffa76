package dev.collie.core.eval;

import com.fasterxml.jackson.databind.JsonNode;
import dev.collie.core.CollieException;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.MetricFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.List;

import static dev.collie.core.testing.MetricFixtures.PARITY;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BleuMetricTest {
    private static final JsonNode BLEU = MetricFixtures.text().get("bleu");

    @ParameterizedTest
    @EnumSource(value = BleuSmoothing.class, names = {"METHOD0", "METHOD1", "METHOD2"})
    void sentenceBleuMatchesNltk(BleuSmoothing smoothing) {
        JsonNode expected = BLEU.get("sentence").get("nltk_" + smoothing.label());
        BleuConfig config = new BleuConfig(4, smoothing, BleuConfig.Average.MACRO, TextTokenizer.WHITESPACE);
        double worst = worstSentence(config, expected);
        Agreement.within("sentence BLEU " + smoothing.label() + " vs nltk sentence_bleu", worst, PARITY);
        double macro = bleu(config, indices(expected.size()));
        Agreement.within("macro BLEU " + smoothing.label() + " vs mean of nltk sentence_bleu",
                Math.abs(macro - BLEU.get("macro").get("nltk_" + smoothing.label()).asDouble()), PARITY);
    }

    @Test
    void addKSentenceBleuMatchesSacrebleu() {
        JsonNode expected = BLEU.get("sentence").get("sacrebleu_add_k");
        BleuConfig config = new BleuConfig(4, BleuSmoothing.ADD_K, BleuConfig.Average.MACRO, TextTokenizer.WHITESPACE);
        Agreement.within("sentence BLEU add-k vs sacrebleu sentence_score", worstSentence(config, expected), PARITY);
        double macro = bleu(config, indices(expected.size()));
        Agreement.within("macro BLEU add-k vs mean of sacrebleu sentence_score",
                Math.abs(macro - BLEU.get("macro").get("sacrebleu_add_k").asDouble()), PARITY);
    }

    @ParameterizedTest
    @CsvSource({"none, none, METHOD0", "none, floor, METHOD1", "none, add-k, ADD_K",
                "13a, none, METHOD0", "13a, floor, METHOD1", "13a, add-k, ADD_K"})
    void corpusBleuMatchesSacrebleu(String tokenize, String smooth, BleuSmoothing smoothing) {
        TextTokenizer tokenizer = tokenize.equals("none") ? TextTokenizer.WHITESPACE : TextTokenizer.SACREBLEU_13A;
        BleuConfig config = new BleuConfig(4, smoothing, BleuConfig.Average.MICRO, tokenizer);
        double expected = BLEU.get("corpus_sacrebleu").get(tokenize).get(smooth).asDouble();
        double got = bleu(config, indices(MetricFixtures.predictions().size()));
        Agreement.within("corpus BLEU " + smoothing.label() + " tokenize " + tokenize + " vs sacrebleu " + smooth,
                Math.abs(got - expected), PARITY);
    }

    /**
     * nltk floors each sentence's n-gram count at 1 before summing (a prediction of fewer than 4 words adds a
     * phantom 4-gram), CoLLiE and sacrebleu floor the corpus sum: on predictions of at least 4 words they agree.
     */
    @ParameterizedTest
    @EnumSource(value = BleuSmoothing.class, names = {"METHOD0", "METHOD1", "METHOD2"})
    void corpusBleuMatchesNltkWhereEveryPredictionHasFourWords(BleuSmoothing smoothing) {
        BleuConfig config = new BleuConfig(4, smoothing, BleuConfig.Average.MICRO, TextTokenizer.WHITESPACE);
        double got = bleu(config, MetricFixtures.ints(BLEU.get("long_indices")));
        double expected = BLEU.get("corpus_nltk").get(smoothing.label()).get("long").asDouble();
        Agreement.within("corpus BLEU " + smoothing.label() + " vs nltk corpus_bleu (predictions of >= 4 words)",
                Math.abs(got - expected), PARITY);
        // with the ten shorter predictions, nltk's phantom n-grams lower its corpus BLEU (docs/evaluation.md)
        double all = bleu(config, indices(MetricFixtures.predictions().size()));
        double nltkAll = BLEU.get("corpus_nltk").get(smoothing.label()).get("all").asDouble();
        assertEquals(0.0156, all - nltkAll, 1e-4, "the documented difference to nltk on all pairs");
    }

    @Test
    void smoothingDecidesACorpusWithoutFourGramMatches() {
        JsonNode sub = BLEU.get("no_fourgram_match");
        int[] pairs = MetricFixtures.ints(sub.get("indices"));
        String[][] cases = {{"METHOD0", "nltk_method0"}, {"METHOD1", "nltk_method1"}, {"METHOD2", "nltk_method2"},
                {"METHOD0", "sacrebleu_none"}, {"METHOD1", "sacrebleu_floor"}, {"ADD_K", "sacrebleu_add-k"}};
        for (String[] c : cases) {
            BleuConfig config = new BleuConfig(4, BleuSmoothing.valueOf(c[0]), BleuConfig.Average.MICRO,
                    TextTokenizer.WHITESPACE);
            Agreement.within("corpus BLEU without 4-gram matches, " + config.smoothing().label() + " vs " + c[1],
                    Math.abs(bleu(config, pairs) - sub.get(c[1]).asDouble()), PARITY);
        }
        BleuConfig none = new BleuConfig(4, BleuSmoothing.METHOD0, BleuConfig.Average.MICRO, TextTokenizer.WHITESPACE);
        assertEquals(0.0, bleu(none, pairs), "no smoothing and an order without a match: BLEU 0");
        assertTrue(sub.get("nltk_method1").asDouble() > 0.01, "the fixture must exercise the smoothing");
    }

    @Test
    void bigramBleuMatchesNltk() {
        BleuConfig config = new BleuConfig(2, BleuSmoothing.METHOD1, BleuConfig.Average.MACRO, TextTokenizer.WHITESPACE);
        Agreement.within("sentence BLEU-2 method1 vs nltk sentence_bleu weights (0.5, 0.5)",
                worstSentence(config, BLEU.get("bigram_nltk_method1")), PARITY);
    }

    @Test
    void smoothingsAreKnownByNltkAndCollieNames() {
        assertEquals(BleuSmoothing.METHOD0, BleuSmoothing.named("no_smooth"));
        assertEquals(BleuSmoothing.METHOD1, BleuSmoothing.named("smooth1"));
        assertEquals(BleuSmoothing.METHOD2, BleuSmoothing.named("nltk_smooth2"));
        assertEquals(BleuSmoothing.ADD_K, BleuSmoothing.named("smooth2"));
        assertEquals(BleuSmoothing.METHOD2, BleuSmoothing.named("Method2"));
        CollieException e = assertThrows(CollieException.class, () -> BleuSmoothing.named("method7"));
        assertTrue(e.getMessage().contains("unknown BLEU smoothing 'method7'"), e.getMessage());
        assertTrue(e.getMessage().contains("add-k (smooth2)"), e.getMessage());
    }

    @Test
    void batchesWithoutReferencesAreRefusedNamingTheMetric() {
        BleuMetric m = new BleuMetric();
        CollieException noRefs = assertThrows(CollieException.class,
                () -> m.update(EvalBatch.ofTexts(List.of("a b"), null)));
        assertEquals("metric 'bleu' needs references; this batch has predictions only", noRefs.getMessage());
        CollieException empty = assertThrows(CollieException.class,
                () -> m.update(EvalBatch.ofTexts(List.of("a b", "c"), List.of(List.of("a"), List.of()))));
        assertEquals("metric 'bleu': prediction 1 of the batch has no reference", empty.getMessage());
        CollieException noTexts = assertThrows(CollieException.class, () -> m.update(EvalBatch.ofLoss(1.0, 2)));
        assertEquals("metric 'bleu' needs texts (predictions and references); this batch has only a loss",
                noTexts.getMessage());
        assertTrue(Double.isNaN(m.get().get("bleu")), "nothing seen: NaN");
    }

    /** The largest difference between the BLEU of each fixture pair alone and {@code expected}'s entry for it. */
    private static double worstSentence(BleuConfig config, JsonNode expected) {
        double worst = 0;
        for (int i = 0; i < expected.size(); i++) {
            double d = Math.abs(bleu(config, new int[] {i}) - expected.get(i).asDouble());
            worst = Math.max(worst, Double.isNaN(d) ? Double.POSITIVE_INFINITY : d);
        }
        return worst;
    }

    /** BLEU over the fixture pairs {@code pairs}, fed in batches of up to five. */
    static double bleu(BleuConfig config, int[] pairs) {
        BleuMetric m = new BleuMetric(config);
        List<String> preds = MetricFixtures.predictions();
        List<List<String>> refs = MetricFixtures.references();
        for (int start = 0; start < pairs.length; start += 5) {
            List<String> p = new ArrayList<>();
            List<List<String>> r = new ArrayList<>();
            for (int k = start; k < Math.min(start + 5, pairs.length); k++) {
                p.add(preds.get(pairs[k]));
                r.add(refs.get(pairs[k]));
            }
            m.update(EvalBatch.ofTexts(p, r));
        }
        return m.get().get("bleu");
    }

    static int[] indices(int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = i;
        }
        return out;
    }
}
