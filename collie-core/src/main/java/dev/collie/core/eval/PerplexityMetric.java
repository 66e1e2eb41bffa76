package dev.collie.core.eval;

import dev.collie.core.dist.Communicator;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Perplexity from summed token losses ({@link EvalBatch#loss()}): {@code loss} is the summed loss over the summed
 * token count, the mean per token, and {@code perplexity} is exp of it. CoLLiE's {@code PPLMetric} averages each
 * batch's perplexity instead, which weighs a short batch's tokens more and changes with the batch size; the mean
 * per token is the perplexity of the whole evaluation set (and what {@code Trainer.evaluate} reports).
 */
public final class PerplexityMetric implements Metric {
    private double lossSum;
    private long tokens;

    @Override
    public void update(EvalBatch batch) {
        EvalBatch.Loss loss = batch.loss("perplexity");
        lossSum += loss.sum();
        tokens += loss.tokens();
    }

    @Override
    public Map<String, Double> get() {
        double mean = lossSum / tokens;
        Map<String, Double> out = new LinkedHashMap<>();
        out.put("perplexity", Math.exp(mean));
        out.put("loss", mean);
        return out;
    }

    @Override
    public void reset() {
        lossSum = 0;
        tokens = 0;
    }

    @Override
    public void gather(Communicator group) {
        double[] sum = Collectives.sum(group, new double[] {lossSum, tokens});
        lossSum = sum[0];
        tokens = (long) sum[1];
    }
}
