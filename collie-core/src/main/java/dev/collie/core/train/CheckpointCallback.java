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
import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Writes training checkpoints into one folder (CoLLiE's CheckpointCallback), each a {@link TrainingCheckpoint} that
 * {@link Trainer#resume} continues exactly, under any parallel layout and for adapters as for whole models:
 * <ul>
 * <li>every N steps, {@code step_<n>}, the newest {@code keep} of them kept (0 keeps all; CoLLiE's {@code max}),
 * and one at the end of training;</li>
 * <li>every N epochs, {@code epoch_<e>} (e from 0);</li>
 * <li>{@code last}: after every epoch and at the end of training, replaced each time;</li>
 * <li>top-k: after each evaluation whose {@link TrackedMetric watched value} is among the best {@code k} so far,
 * {@code epoch_<e>-batch_<b>-<key>_<value>} (the batch within the epoch from 0, the value as Python prints it);
 * the one it pushes out of the best k is deleted after the new one is in place. A value that is not finite is
 * never kept; on a tie the newer checkpoint replaces the older. {@code k = -1} keeps every evaluation's.</li>
 * </ul>
 * Checkpoints are written once the step and its evaluation are done ({@link Callback#onStepEnd}), so each holds
 * every callback's state after that evaluation. Every rank takes part in a save; the lead rank locks the folder for
 * the run and deletes what falls out.
 * <pre>{@code
 * CheckpointCallback.builder(dir).topK(3, TrackedMetric.min("ppl")).last(true).build()
 * }</pre>
 */
public final class CheckpointCallback implements StatefulCallback {
    private static final Logger LOG = LoggerFactory.getLogger(CheckpointCallback.class);

    private final Path folder;
    private final long everyNSteps;
    private final int keep;
    private final int everyNEpochs;
    private final boolean last;
    private final int topK;
    private final TrackedMetric metric;
    private final Deque<String> written = new ArrayDeque<>();  // step_<n>, oldest first
    private final TopK best;
    private final List<String> due = new ArrayList<>();       // top-k folders to write at the step's end
    private final List<String> evicted = new ArrayList<>();   // and to delete after them
    private long lastWrittenAt = -1;
    private DirectoryLock lock;       // the lead rank's, for the run

    /** Every {@code everyNSteps} steps into {@code folder/step_<n>}, keeping the newest {@code keep} (0: all). */
    public CheckpointCallback(Path folder, long everyNSteps, int keep) {
        this(builder(folder).everyNSteps(everyNSteps).keep(keep));
    }

    private CheckpointCallback(Builder b) {
        this.folder = Objects.requireNonNull(b.folder, "folder");
        this.everyNSteps = b.everyNSteps;
        this.keep = b.keep;
        this.everyNEpochs = b.everyNEpochs;
        this.last = b.last;
        this.topK = b.topK;
        this.metric = b.metric;
        this.best = new TopK(topK, metric);
    }

    /** A callback writing into {@code folder}; say what it writes with the builder's methods. */
    public static Builder builder(Path folder) {
        return new Builder(folder);
    }

    /** Locks the folder (lead rank) and refuses, before the first step, a top-k metric no evaluation reports. */
    @Override
    public void onTrainBegin(Trainer trainer) {
        if (topK != 0) {
            metric.requireEvaluatedBy(trainer, "CheckpointCallback (top " + topK + ")");
        }
        if (trainer.isLeadRank() && lock == null) {
            lock = DirectoryLock.acquire(folder);
        }
    }

    /** Offers the evaluation's value to the top k; a checkpoint that makes it is written at the step's end. */
    @Override
    public void onEvaluateEnd(Trainer trainer, Map<String, Double> results) {
        if (topK == 0 || !trainer.running()) {
            return;
        }
        double value = metric.valueIn(results);
        if (!Double.isFinite(value)) {
            if (trainer.isLeadRank()) {
                LOG.warn("step {}: {} = {} is not finite: no top-{} checkpoint", trainer.globalStep(), metric.key(),
                        value, topK);
            }
            return;
        }
        long batch = trainer.globalStep() - 1 - (long) trainer.epoch() * trainer.stepsPerEpoch();
        String name = "epoch_" + trainer.epoch() + "-batch_" + batch + "-" + metric.key() + "_" + pythonFloat(value);
        TopK.Offer offer = best.offer(name, value);
        if (offer.kept()) {
            due.add(name);
            if (offer.evicted() != null) {
                evicted.add(offer.evicted().name());
            }
        }
    }

    @Override
    public void onStepEnd(Trainer trainer, long step) {
        if (everyNSteps > 0 && step % everyNSteps == 0) {
            saveStep(trainer, step);
        }
        for (String name : due) {
            save(trainer, name);
        }
        due.clear();
        if (trainer.isLeadRank()) {      // one replica removes what one replica moved into place
            evicted.forEach(name -> delete(folder.resolve(name)));
        }
        evicted.clear();
    }

    @Override
    public void onEpochEnd(Trainer trainer, int epoch) {
        if (everyNEpochs > 0 && (epoch + 1) % everyNEpochs == 0) {
            save(trainer, "epoch_" + epoch);
        }
        if (last) {
            saveLast(trainer);
        }
    }

    @Override
    public void onTrainEnd(Trainer trainer) {
        if (everyNSteps > 0 && trainer.globalStep() % everyNSteps != 0) {
            saveStep(trainer, trainer.globalStep());
        }
        if (last && lastWrittenAt != trainer.globalStep()) {
            saveLast(trainer);
        }
    }

    /** Releases the folder's lock, whether the run ended or failed. */
    @Override
    public void onTrainExit(Trainer trainer) {
        if (lock != null) {
            lock.close();
            lock = null;
        }
    }

    /** The periodic checkpoints kept and the top k with their values, by folder name. */
    @Override
    public ObjectNode saveState() {
        ObjectNode s = JsonNodeFactory.instance.objectNode();
        written.forEach(s.putArray("steps")::add);
        var top = s.putArray("top_k");
        for (TopK.Entry e : best.entries()) {
            top.addObject().put("folder", e.name()).put("value", e.value());
        }
        return s;
    }

    @Override
    public void loadState(JsonNode state) {
        written.clear();
        state.path("steps").forEach(n -> written.addLast(n.asText()));
        List<TopK.Entry> entries = new ArrayList<>();
        state.path("top_k").forEach(n -> entries.add(new TopK.Entry(n.path("folder").asText(),
                n.path("value").asDouble())));
        best.restore(entries);
    }

    /** The folders of the best k so far, in the order they were written. */
    public List<String> topKFolders() {
        return best.entries().stream().map(TopK.Entry::name).toList();
    }

    private void saveStep(Trainer trainer, long step) {
        String name = "step_" + step;
        written.addLast(name);           // before the save, whose state lists it
        save(trainer, name);
        while (keep > 0 && written.size() > keep) {
            String old = written.removeFirst();
            if (trainer.isLeadRank()) {
                delete(folder.resolve(old));
            }
        }
    }

    private void saveLast(Trainer trainer) {
        save(trainer, "last");
        lastWrittenAt = trainer.globalStep();
    }

    /**
     * Writes {@code folder/name}; a save that fails (a non-finite weight, a full disk) throws before anything is
     * deleted, so the older checkpoints stay.
     */
    private void save(Trainer trainer, String name) {
        if (trainer.isLeadRank()) {
            try {
                AtomicFiles.removeLeftovers(folder);     // of interrupted saves: this run holds the folder
            } catch (IOException e) {
                throw new CollieException(folder + ": cannot remove what an interrupted save left: " + e, e);
            }
        }
        trainer.save(folder.resolve(name));
        if (trainer.isLeadRank()) {
            LOG.debug("checkpoint {} at step {}", name, trainer.globalStep());
        }
    }

    /** Deletes an old checkpoint (one a resumed run's state lists may be gone already). */
    private static void delete(Path dir) {
        try {
            AtomicFiles.deleteTree(dir);
        } catch (IOException e) {
            throw new CollieException(dir + ": cannot delete an old checkpoint: " + e.getMessage(), e);
        }
    }

    /**
     * {@code v} as Python's {@code str(float)} writes it (CoLLiE's folder names): the shortest digits, positional from
     * 1e-4 up to 1e16 with at least one decimal ({@code 2.0}), else {@code 1.5e-05}, {@code 1e+16}.
     */
    static String pythonFloat(double v) {
        if (v == 0) {
            return 1 / v < 0 ? "-0.0" : "0.0";
        }
        BigDecimal d = new BigDecimal(Double.toString(v)).stripTrailingZeros();
        String digits = d.unscaledValue().abs().toString();
        int exponent = digits.length() - 1 - d.scale();
        String sign = v < 0 ? "-" : "";
        if (exponent >= -4 && exponent < 16) {
            String plain = d.abs().toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mantissa + String.format(Locale.ROOT, "e%s%02d", exponent < 0 ? "-" : "+", Math.abs(exponent));
    }

    /** What a {@link CheckpointCallback} writes; nothing until told. */
    public static final class Builder {
        private final Path folder;
        private long everyNSteps;
        private int keep;
        private int everyNEpochs;
        private boolean last;
        private int topK;
        private TrackedMetric metric;

        private Builder(Path folder) {
            this.folder = folder;
        }

        /** {@code step_<n>} every {@code n} steps (n ≥ 1) and at the end of training. */
        public Builder everyNSteps(long n) {
            if (n < 1) {
                throw new CollieException("checkpoint interval must be >= 1 step, got " + n);
            }
            this.everyNSteps = n;
            return this;
        }

        /** Keep the newest {@code k} {@code step_<n>} checkpoints (0, the default, keeps all). */
        public Builder keep(int k) {
            if (k < 0) {
                throw new CollieException("checkpoints to keep must be >= 0 (0 keeps all), got " + k);
            }
            this.keep = k;
            return this;
        }

        /** {@code epoch_<e>} after every {@code n}-th epoch (n ≥ 1). */
        public Builder everyNEpochs(int n) {
            if (n < 1) {
                throw new CollieException("checkpoint interval must be >= 1 epoch, got " + n);
            }
            this.everyNEpochs = n;
            return this;
        }

        /** {@code last}, replaced after every epoch and at the end of training. */
        public Builder last(boolean on) {
            this.last = on;
            return this;
        }

        /** The best {@code k} checkpoints by {@code metric} after each evaluation ({@code k ≥ 1}, or -1 for all). */
        public Builder topK(int k, TrackedMetric metric) {
            if (k == 0 || k < -1) {
                throw new CollieException("top-k checkpoints: k must be >= 1, or -1 to keep every evaluation's, got "
                        + k);
            }
            this.topK = k;
            this.metric = Objects.requireNonNull(metric, "the metric that ranks the top-k checkpoints");
            return this;
        }

        public CheckpointCallback build() {
            if (everyNSteps == 0 && everyNEpochs == 0 && !last && topK == 0) {
                throw new CollieException(folder + ": this checkpoint callback would write nothing: give every N steps,"
                        + " every N epochs, last, or top-k");
            }
            return new CheckpointCallback(this);
        }
    }
}
