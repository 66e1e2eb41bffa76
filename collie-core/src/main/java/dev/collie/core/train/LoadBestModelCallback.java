package dev.collie.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.io.AtomicFiles;
import dev.collie.core.io.DirectoryLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Keeps the model of the best evaluation so far in {@code folder/best} and loads it back into the trainer's model
 * when training ends (CoLLiE's LoadBestModelCallback), on every rank and under any parallel layout; for a PEFT
 * model that is the adapter (its frozen base does not change). {@code best} is a {@link TrainingCheckpoint} written
 * by {@link Trainer#save}, replaced whenever an evaluation's {@link TrackedMetric value} is strictly better than the
 * best so far (a tie keeps the earlier; a value that is not finite is never best). The reload restores weights only,
 * and happens when training ends normally or by {@link Trainer#requestStop early stopping}: a run stopped by its
 * stop condition (a signal) keeps its own weights and {@code best}, for {@link Trainer#resume}. With
 * {@code deleteAfterLoad} (CoLLiE's {@code delete_after_train}, the default) {@code folder/best} is deleted once
 * loaded. Put it after any {@link CheckpointCallback}, whose checkpoints at the end must hold the trained weights.
 */
public final class LoadBestModelCallback implements StatefulCallback {
    private static final Logger LOG = LoggerFactory.getLogger(LoadBestModelCallback.class);

    private final Path dir;
    private final TrackedMetric metric;
    private final boolean deleteAfterLoad;
    private double bestValue = Double.NaN;
    private long bestStep = -1;
    private boolean due;
    private boolean loaded;
    private DirectoryLock lock;

    /** Keeps the best in {@code folder/best} and deletes it once loaded back. */
    public LoadBestModelCallback(Path folder, TrackedMetric metric) {
        this(folder, metric, true);
    }

    public LoadBestModelCallback(Path folder, TrackedMetric metric, boolean deleteAfterLoad) {
        this.dir = Objects.requireNonNull(folder, "folder").resolve("best");
        this.metric = Objects.requireNonNull(metric, "metric");
        this.deleteAfterLoad = deleteAfterLoad;
    }

    /** Refuses a metric no evaluation reports, and a checkpoint callback after this one; locks {@code best}. */
    @Override
    public void onTrainBegin(Trainer trainer) {
        metric.requireEvaluatedBy(trainer, "LoadBestModelCallback");
        List<Callback> all = trainer.callbacks();
        if (all.subList(all.indexOf(this), all.size()).stream().anyMatch(c -> c instanceof CheckpointCallback)) {
            throw new CollieException("LoadBestModelCallback comes before a CheckpointCallback: it loads the best"
                    + " weights when training ends, and the checkpoints written after it would hold them under the"
                    + " last step; give the CheckpointCallback first");
        }
        loaded = false;
        if (trainer.isLeadRank() && lock == null) {
            lock = DirectoryLock.acquire(dir);
            try {
                AtomicFiles.removeLeftoversOf(dir);
            } catch (IOException e) {
                throw new CollieException(dir + ": cannot remove what an interrupted save left: " + e, e);
            }
        }
    }

    @Override
    public void onEvaluateEnd(Trainer trainer, Map<String, Double> results) {
        if (!trainer.running()) {
            return;
        }
        double value = metric.valueIn(results);
        if (Double.isFinite(value) && (bestStep < 0 || metric.better(value, bestValue))) {
            bestValue = value;
            bestStep = trainer.globalStep();
            due = true;
        }
    }

    @Override
    public void onStepEnd(Trainer trainer, long step) {
        if (due) {
            trainer.save(dir);
            due = false;
        }
    }

    /** Loads the best weights back (every rank), then deletes {@code best} when asked to. */
    @Override
    public void onTrainEnd(Trainer trainer) {
        if (trainer.stopped()) {
            return;
        }
        if (bestStep < 0) {
            if (trainer.isLeadRank()) {
                LOG.warn("no evaluation gave a finite {}: the model keeps its last weights", metric.key());
            }
            return;
        }
        TrainingCheckpoint.Position at = trainer.loadWeights(dir);
        if (at.globalStep() != bestStep) {
            throw new CollieException(dir + " holds step " + at.globalStep() + ", but the best " + metric.key()
                    + " of this run was at step " + bestStep + " (a checkpoint of another run?)");
        }
        loaded = true;
        if (trainer.isLeadRank()) {
            LOG.info("loaded the best model: {} = {} at step {}", metric.key(), bestValue, bestStep);
            if (deleteAfterLoad) {
                try {
                    AtomicFiles.deleteTree(dir);
                } catch (IOException e) {
                    throw new CollieException(dir + ": cannot delete the best model after loading it: " + e, e);
                }
            }
        }
    }

    @Override
    public void onTrainExit(Trainer trainer) {
        if (lock != null) {
            lock.close();
            lock = null;
        }
    }

    /** Whether the last run ended with the best weights loaded. */
    public boolean loaded() {
        return loaded;
    }

    /** The best value so far, NaN before a finite one. */
    public double bestValue() {
        return bestValue;
    }

    /** The step of the best value so far, -1 before a finite one. */
    public long bestStep() {
        return bestStep;
    }

    @Override
    public ObjectNode saveState() {
        ObjectNode s = JsonNodeFactory.instance.objectNode();
        if (bestStep >= 0) {
            s.put("best", bestValue).put("step", bestStep);
        }
        return s;
    }

    @Override
    public void loadState(JsonNode state) {
        bestStep = state.has("step") ? state.get("step").asLong() : -1;
        bestValue = bestStep >= 0 ? state.get("best").asDouble() : Double.NaN;
    }
}
