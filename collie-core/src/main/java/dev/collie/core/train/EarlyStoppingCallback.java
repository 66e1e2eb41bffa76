package dev.collie.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;
import java.util.Objects;

/**
 * Ends training once {@code patience} evaluations in a row have not improved the {@link TrackedMetric watched value}
 * by more than {@code minDelta} (fastNLP's EarlyStopCallback, on which CoLLiE's callbacks are modelled, with
 * Keras' and Lightning's {@code min_delta}): the best is what the first evaluation reported, then each value that
 * beats it by more than {@code minDelta}; a value that is not finite counts as no improvement. The stop goes through
 * {@link Trainer#requestStop}, so every rank ends after the same step, the one whose evaluation used the patience up,
 * and {@link Trainer#stoppedEarly()} says so.
 */
public final class EarlyStoppingCallback implements StatefulCallback {
    private static final Logger LOG = LoggerFactory.getLogger(EarlyStoppingCallback.class);

    private final TrackedMetric metric;
    private final int patience;
    private final double minDelta;
    private double best = Double.NaN;
    private boolean hasBest;
    private int waited;

    /**
     * @param patience evaluations without improvement that end the run (≥ 1)
     * @param minDelta how much a value must beat the best by to count as an improvement (≥ 0)
     */
    public EarlyStoppingCallback(TrackedMetric metric, int patience, double minDelta) {
        this.metric = Objects.requireNonNull(metric, "metric");
        if (patience < 1) {
            throw new CollieException("early stopping: patience must be >= 1 evaluation, got " + patience);
        }
        if (!(minDelta >= 0) || Double.isInfinite(minDelta)) {
            throw new CollieException("early stopping: min_delta must be a finite number >= 0, got " + minDelta);
        }
        this.patience = patience;
        this.minDelta = minDelta;
    }

    /** Refuses a metric no evaluation reports; a resumed run whose patience was used up takes no step. */
    @Override
    public void onTrainBegin(Trainer trainer) {
        metric.requireEvaluatedBy(trainer, "EarlyStoppingCallback");
        if (waited >= patience) {
            trainer.requestStop();
        }
    }

    @Override
    public void onEvaluateEnd(Trainer trainer, Map<String, Double> results) {
        if (!trainer.running()) {
            return;
        }
        double value = metric.valueIn(results);
        if (Double.isFinite(value) && (!hasBest || metric.improves(value, best, minDelta))) {
            best = value;
            hasBest = true;
            waited = 0;
            return;
        }
        waited++;
        if (waited >= patience) {
            if (trainer.isLeadRank()) {
                LOG.info("early stopping after step {}: {} has not improved on {} by more than {} in {} evaluation{}",
                        trainer.globalStep(), metric.key(), hasBest ? best : "(none finite)", minDelta, waited,
                        waited == 1 ? "" : "s");
            }
            trainer.requestStop();
        }
    }

    /** Evaluations in a row without improvement so far. */
    public int waited() {
        return waited;
    }

    @Override
    public ObjectNode saveState() {
        ObjectNode s = JsonNodeFactory.instance.objectNode().put("waited", waited);
        if (hasBest) {
            s.put("best", best);
        }
        return s;
    }

    @Override
    public void loadState(JsonNode state) {
        waited = state.path("waited").asInt();
        hasBest = state.has("best");
        best = hasBest ? state.get("best").asDouble() : Double.NaN;
    }
}
