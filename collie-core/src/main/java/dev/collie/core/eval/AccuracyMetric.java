package dev.collie.core.eval;

import dev.collie.core.dist.Communicator;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Accuracy of predicted ids against true ids ({@link EvalBatch#labels()}): {@code accuracy} is the share of
 * counted positions (mask 1, target not the ignore index) whose prediction is right; {@code sequence-accuracy} the
 * share of rows right at every counted position (rows with none are left out). For class ids {@code [B]} the two
 * are equal. Scores with one more dimension are reduced to their argmax, as CoLLiE's {@code AccuracyMetric} does;
 * its {@code seq_len} is a mask of ones over each row's first {@code seq_len} positions here.
 */
public final class AccuracyMetric implements Metric {
    private long correct;
    private long counted;
    private long correctRows;
    private long countedRows;

    @Override
    public void update(EvalBatch batch) {
        EvalBatch.Positions p = batch.labels("accuracy").positions();
        for (int r = 0; r < p.rows(); r++) {
            boolean any = false;
            boolean allRight = true;
            for (int i = r * p.cols(); i < (r + 1) * p.cols(); i++) {
                if (p.counted()[i]) {
                    any = true;
                    counted++;
                    if (p.predicted()[i] == p.target()[i]) {
                        correct++;
                    } else {
                        allRight = false;
                    }
                }
            }
            if (any) {
                countedRows++;
                if (allRight) {
                    correctRows++;
                }
            }
        }
    }

    @Override
    public Map<String, Double> get() {
        Map<String, Double> out = new LinkedHashMap<>();
        out.put("accuracy", (double) correct / counted);
        out.put("sequence-accuracy", (double) correctRows / countedRows);
        return out;
    }

    @Override
    public void reset() {
        correct = 0;
        counted = 0;
        correctRows = 0;
        countedRows = 0;
    }

    @Override
    public void gather(Communicator group) {
        double[] sum = Collectives.sum(group, new double[] {correct, counted, correctRows, countedRows});
        correct = (long) sum[0];
        counted = (long) sum[1];
        correctRows = (long) sum[2];
        countedRows = (long) sum[3];
    }
}
