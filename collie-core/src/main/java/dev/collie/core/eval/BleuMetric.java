package dev.collie.core.eval;

import dev.collie.core.dist.Communicator;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * BLEU (Papineni et al. 2002) of decoded predictions against their references, as CoLLiE's {@code BleuMetric}
 * computes it: for each order n ≤ {@link BleuConfig#ngram()}, the hypothesis n-grams matched by a reference, each
 * counted at most as often as in the reference that has it most (clipped matches), over the hypothesis n-grams;
 * the geometric mean of the smoothed precisions ({@link BleuSmoothing}) times the brevity penalty
 * exp(1 − r/c) when the hypothesis length c is below the reference length r (the reference closest in length to
 * the hypothesis, the shorter one on a tie; 0 when c is 0). With no unigram match BLEU is 0.
 *
 * <p>The macro average is the mean of every sentence's BLEU, the micro average the BLEU of the counts and lengths
 * summed over all sentences; both are kept, so {@link #gather} sums statistics either way. Texts are split into
 * words by {@link BleuConfig#tokenizer()}. Reads {@link EvalBatch#texts()} with references; its value is
 * {@code "bleu"}, in [0, 1].
 */
public final class BleuMetric implements Metric {
    private final BleuConfig config;
    private double sentenceBleuSum;
    private long sentences;
    private long hypothesisLength;
    private long referenceLength;
    private long[] matches;
    private long[] totals;

    /** A BLEU metric with CoLLiE's defaults ({@link BleuConfig#DEFAULT}). */
    public BleuMetric() {
        this(BleuConfig.DEFAULT);
    }

    public BleuMetric(BleuConfig config) {
        this.config = config;
        reset();
    }

    @Override
    public void update(EvalBatch batch) {
        EvalBatch.Texts texts = batch.texts("bleu");
        List<List<String>> references = texts.requireReferences("bleu");
        int n = config.ngram();
        long[] m = new long[n];
        long[] t = new long[n];
        for (int i = 0; i < texts.predictions().size(); i++) {
            List<String> hyp = config.tokenizer().tokenize(texts.predictions().get(i));
            List<List<String>> refs = references.get(i).stream().map(config.tokenizer()::tokenize).toList();
            long refLength = closestLength(refs, hyp.size());
            for (int order = 1; order <= n; order++) {
                Map<List<String>, Integer> hypCounts = ngrams(hyp, order);
                Map<List<String>, Integer> refMax = new HashMap<>();
                for (List<String> ref : refs) {
                    ngrams(ref, order).forEach((g, c) -> refMax.merge(g, c, Math::max));
                }
                long matched = 0;
                for (Map.Entry<List<String>, Integer> e : hypCounts.entrySet()) {
                    matched += Math.min(e.getValue(), refMax.getOrDefault(e.getKey(), 0));
                }
                m[order - 1] = matched;
                t[order - 1] = Math.max(0, hyp.size() - order + 1);
                matches[order - 1] += matched;
                totals[order - 1] += t[order - 1];
            }
            sentenceBleuSum += bleu(m, t, hyp.size(), refLength, config.smoothing());
            sentences++;
            hypothesisLength += hyp.size();
            referenceLength += refLength;
        }
    }

    @Override
    public Map<String, Double> get() {
        double bleu = switch (config.average()) {
            case MACRO -> sentences == 0 ? Double.NaN : sentenceBleuSum / sentences;
            case MICRO -> sentences == 0 ? Double.NaN
                    : bleu(matches, totals, hypothesisLength, referenceLength, config.smoothing());
        };
        Map<String, Double> out = new LinkedHashMap<>();
        out.put("bleu", bleu);
        return out;
    }

    @Override
    public void reset() {
        sentenceBleuSum = 0;
        sentences = 0;
        hypothesisLength = 0;
        referenceLength = 0;
        matches = new long[config.ngram()];
        totals = new long[config.ngram()];
    }

    @Override
    public void gather(Communicator group) {
        int n = config.ngram();
        double[] s = new double[4 + 2 * n];
        s[0] = sentenceBleuSum;
        s[1] = sentences;
        s[2] = hypothesisLength;
        s[3] = referenceLength;
        for (int i = 0; i < n; i++) {
            s[4 + i] = matches[i];
            s[4 + n + i] = totals[i];
        }
        double[] sum = Collectives.sum(group, s);
        sentenceBleuSum = sum[0];
        sentences = (long) sum[1];
        hypothesisLength = (long) sum[2];
        referenceLength = (long) sum[3];
        for (int i = 0; i < n; i++) {
            matches[i] = (long) sum[4 + i];
            totals[i] = (long) sum[4 + n + i];
        }
    }

    /**
     * BLEU from clipped matches and hypothesis n-gram counts per order (index 0 = unigrams), the hypothesis length
     * and the reference length, with uniform weights.
     */
    static double bleu(long[] matches, long[] totals, long hypLength, long refLength, BleuSmoothing smoothing) {
        if (matches[0] == 0) {
            return 0;
        }
        double logSum = 0;
        for (int i = 0; i < matches.length; i++) {
            if (smoothing == BleuSmoothing.METHOD0 && matches[i] == 0) {
                return 0;
            }
            logSum += Math.log(smoothing.precision(i + 1, matches[i], totals[i])) / matches.length;
        }
        double bp = hypLength < refLength ? Math.exp(1 - (double) refLength / hypLength) : 1;
        return bp * Math.exp(logSum);
    }

    /** The length of the reference closest to {@code hypLength}, the shorter on a tie. */
    private static long closestLength(List<List<String>> refs, int hypLength) {
        long best = -1;
        for (List<String> r : refs) {
            long d = Math.abs(r.size() - hypLength);
            long bestD = Math.abs(best - hypLength);
            if (best < 0 || d < bestD || (d == bestD && r.size() < best)) {
                best = r.size();
            }
        }
        return best;
    }

    /** How often each n-gram of order {@code n} occurs in {@code words}. */
    static Map<List<String>, Integer> ngrams(List<String> words, int n) {
        Map<List<String>, Integer> counts = new HashMap<>();
        for (int i = 0; i + n <= words.size(); i++) {
            counts.merge(words.subList(i, i + n), 1, Integer::sum);
        }
        return counts;
    }
}
