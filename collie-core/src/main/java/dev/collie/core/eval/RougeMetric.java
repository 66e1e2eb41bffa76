package dev.collie.core.eval;

import dev.collie.core.dist.Communicator;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * ROUGE-N and ROUGE-L (Lin 2004) of decoded predictions against their references, as torchmetrics'
 * {@code ROUGEScore} computes them by default. For each pair, on the words of {@link RougeConfig#tokenizer()}
 * ({@link TextTokenizer#ROUGE} by default: lower case, letters and digits only):
 * <ul>
 *   <li>ROUGE-N: the n-grams the prediction shares with the reference, each counted at most as often as in either
 *       (hits); precision = hits / prediction n-grams, recall = hits / reference n-grams;</li>
 *   <li>ROUGE-L: the length of the longest common subsequence of the two word sequences over the prediction's
 *       length (precision) and the reference's (recall);</li>
 *   <li>F = 2PR / (P + R), and P = R = F = 0 when either side has no n-gram or both are 0.</li>
 * </ul>
 * With several references, each variant takes the reference with the highest F (the first on a tie; torchmetrics'
 * {@code accumulate="best"}). The values are the means over pairs: {@code rouge-1-p}, {@code rouge-1-r},
 * {@code rouge-1-f}, ..., {@code rouge-l-f}, in the order of {@link RougeConfig#variants()}.
 *
 * <p>CoLLiE's own {@code RougeMetric} splits on spaces and sentences on periods and counts n-gram sets, but fails on
 * its default input (it calls {@code split} on a list), so there is no CoLLiE result to keep; this follows the
 * library most users compare with.
 */
public final class RougeMetric implements Metric {
    private final RougeConfig config;
    private final int[] orders;
    /** Per variant: summed precision, recall and F over pairs. */
    private double[] sums;
    private long pairs;

    /** ROUGE-1, ROUGE-2 and ROUGE-L ({@link RougeConfig#DEFAULT}). */
    public RougeMetric() {
        this(RougeConfig.DEFAULT);
    }

    public RougeMetric(RougeConfig config) {
        this.config = config;
        this.orders = config.variants().stream().mapToInt(RougeConfig::order).toArray();
        reset();
    }

    @Override
    public void update(EvalBatch batch) {
        EvalBatch.Texts texts = batch.texts("rouge");
        List<List<String>> references = texts.requireReferences("rouge");
        for (int i = 0; i < texts.predictions().size(); i++) {
            List<String> pred = config.tokenizer().tokenize(texts.predictions().get(i));
            List<List<String>> refs = references.get(i).stream().map(config.tokenizer()::tokenize).toList();
            for (int v = 0; v < orders.length; v++) {
                double[] best = null;
                for (List<String> ref : refs) {
                    double[] prf = orders[v] == 0 ? rougeL(pred, ref) : rougeN(pred, ref, orders[v]);
                    if (best == null || prf[2] > best[2]) {
                        best = prf;
                    }
                }
                for (int k = 0; k < 3; k++) {
                    sums[3 * v + k] += best[k];
                }
            }
            pairs++;
        }
    }

    @Override
    public Map<String, Double> get() {
        Map<String, Double> out = new LinkedHashMap<>();
        String[] stats = {"p", "r", "f"};
        for (int v = 0; v < orders.length; v++) {
            for (int k = 0; k < 3; k++) {
                out.put(config.variants().get(v) + "-" + stats[k], pairs == 0 ? Double.NaN : sums[3 * v + k] / pairs);
            }
        }
        return out;
    }

    @Override
    public void reset() {
        sums = new double[3 * orders.length];
        pairs = 0;
    }

    @Override
    public void gather(Communicator group) {
        double[] s = new double[sums.length + 1];
        System.arraycopy(sums, 0, s, 0, sums.length);
        s[sums.length] = pairs;
        double[] sum = Collectives.sum(group, s);
        System.arraycopy(sum, 0, sums, 0, sums.length);
        pairs = (long) sum[sums.length];
    }

    /** ROUGE-N precision, recall and F of one pair. */
    static double[] rougeN(List<String> pred, List<String> ref, int n) {
        Map<List<String>, Integer> p = BleuMetric.ngrams(pred, n);
        Map<List<String>, Integer> r = BleuMetric.ngrams(ref, n);
        long predCount = Math.max(0, pred.size() - n + 1);
        long refCount = Math.max(0, ref.size() - n + 1);
        if (predCount == 0 || refCount == 0) {
            return new double[3];
        }
        long hits = 0;
        for (Map.Entry<List<String>, Integer> e : p.entrySet()) {
            hits += Math.min(e.getValue(), r.getOrDefault(e.getKey(), 0));
        }
        return prf(hits, predCount, refCount);
    }

    /** ROUGE-L precision, recall and F of one pair. */
    static double[] rougeL(List<String> pred, List<String> ref) {
        if (pred.isEmpty() || ref.isEmpty()) {
            return new double[3];
        }
        int[] prev = new int[pred.size() + 1];
        int[] row = new int[pred.size() + 1];
        for (String word : ref) {
            for (int j = 1; j <= pred.size(); j++) {
                row[j] = word.equals(pred.get(j - 1)) ? prev[j - 1] + 1 : Math.max(prev[j], row[j - 1]);
            }
            int[] t = prev;
            prev = row;
            row = t;
        }
        return prf(prev[pred.size()], pred.size(), ref.size());
    }

    private static double[] prf(long hits, long predCount, long refCount) {
        double p = (double) hits / predCount;
        double r = (double) hits / refCount;
        double f = p == 0 && r == 0 ? 0 : 2 * p * r / (p + r);
        return new double[] {p, r, f};
    }
}
