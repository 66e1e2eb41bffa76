package dev.collie.core.eval;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Precision, recall and F1 of predicted class ids against true ones ({@link EvalBatch#labels()}, counted positions
 * only), as CoLLiE's {@code ClassifyFPreRecMetric} with beta 1. For each class c, over the counted positions:
 * true positives (predicted c, true c), false positives (predicted c, true not c) and false negatives (true c,
 * predicted not c); P = TP / (TP + FP), R = TP / (TP + FN), F1 = 2PR / (P + R), and 0 where a denominator is 0.
 * The {@code -micro} values are those of the counts summed over classes (for one label per position they all equal
 * the accuracy); the {@code -macro} values are the unweighted means of the per-class values over the classes that
 * occur as a prediction or a target (scikit-learn's default label set). Class ids are ≥ 0.
 */
public final class ClassificationMetric implements Metric {
    /** Per class: true positives, false positives, false negatives, at 3c, 3c + 1, 3c + 2. */
    private long[] counts = new long[0];

    @Override
    public void update(EvalBatch batch) {
        EvalBatch.Positions p = batch.labels("f1").positions();
        for (int i = 0; i < p.target().length; i++) {
            if (!p.counted()[i]) {
                continue;
            }
            int predicted = classId(p.predicted()[i], "predicted");
            int target = classId(p.target()[i], "target");
            grow(Math.max(predicted, target) + 1);
            if (predicted == target) {
                counts[3 * target]++;
            } else {
                counts[3 * predicted + 1]++;
                counts[3 * target + 2]++;
            }
        }
    }

    @Override
    public Map<String, Double> get() {
        long tp = 0;
        long fp = 0;
        long fn = 0;
        double[] macro = new double[3];
        int classes = 0;
        for (int c = 0; c < counts.length / 3; c++) {
            long t = counts[3 * c];
            long f = counts[3 * c + 1];
            long n = counts[3 * c + 2];
            if (t + f + n == 0) {
                continue;
            }
            double[] prf = prf(t, f, n);
            for (int k = 0; k < 3; k++) {
                macro[k] += prf[k];
            }
            classes++;
            tp += t;
            fp += f;
            fn += n;
        }
        double[] micro = classes == 0 ? new double[] {Double.NaN, Double.NaN, Double.NaN} : prf(tp, fp, fn);
        Map<String, Double> out = new LinkedHashMap<>();
        out.put("precision-micro", micro[0]);
        out.put("recall-micro", micro[1]);
        out.put("f1-micro", micro[2]);
        out.put("precision-macro", macro[0] / classes);
        out.put("recall-macro", macro[1] / classes);
        out.put("f1-macro", macro[2] / classes);
        return out;
    }

    @Override
    public void reset() {
        counts = new long[0];
    }

    @Override
    public void gather(Communicator group) {
        grow(Math.toIntExact(Collectives.max(group, counts.length / 3)));
        double[] sum = Collectives.sum(group, Arrays.stream(counts).asDoubleStream().toArray());
        for (int i = 0; i < counts.length; i++) {
            counts[i] = (long) sum[i];
        }
    }

    private void grow(int classes) {
        if (3 * classes > counts.length) {
            counts = Arrays.copyOf(counts, 3 * classes);
        }
    }

    private static int classId(long id, String which) {
        if (id < 0 || id > Integer.MAX_VALUE / 3) {
            throw new CollieException("metric 'f1': a " + which + " class id must be >= 0 (the ignore index aside),"
                    + " got " + id);
        }
        return (int) id;
    }

    private static double[] prf(long tp, long fp, long fn) {
        double p = tp + fp == 0 ? 0 : (double) tp / (tp + fp);
        double r = tp + fn == 0 ? 0 : (double) tp / (tp + fn);
        return new double[] {p, r, p + r == 0 ? 0 : 2 * p * r / (p + r)};
    }
}
