package dev.collie.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.Scope;
import dev.collie.core.data.Batch;
import dev.collie.core.data.Collator;
import dev.collie.core.data.DataLoader;
import dev.collie.core.data.Dataset;
import dev.collie.core.data.Sample;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.FusedBackwardOptimizer;
import dev.collie.core.optim.GradClip;
import dev.collie.core.optim.HessianEstimator;
import dev.collie.core.optim.LrSchedule;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.tensor.ActivationDtype;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.BooleanSupplier;

/**
 * The training loop: data → micro-batches → forward/backward (gradients through each parameter's hook)
 * → clipping → optimizer step at the scheduled learning rate → callbacks, evaluation (perplexity).
 * <pre>{@code
 * Trainer.builder().model(model).optimizer(new AdamW(model.module().namedParameters()))
 *        .config(config).trainData(train).evalData(eval).callbacks(new ProgressBar()).build().train();
 * }</pre>
 */
public final class Trainer {
    private static final Logger LOG = LoggerFactory.getLogger(Trainer.class);
    /** The results of the Trainer's own evaluation: the token-mean loss and its perplexity. */
    public static final Set<String> EVALUATION_KEYS = Collections.unmodifiableSet(new LinkedHashSet<>(
            List.of("loss", "ppl")));

    private final LanguageModel model;
    private final Optimizer optimizer;
    private final CollieConfig config;
    private final Dataset trainData;
    private final Dataset evalData;
    private final List<Evaluation> evaluations;
    private final List<Callback> callbacks;
    private final int padId;
    private final DataLoader loader;
    private final LrSchedule schedule;
    private final long totalSteps;
    private final MicroBatchRunner runner;
    private final Distributed dist;
    private final GradientRoute route;
    private long globalStep;
    private int epoch;
    private final BooleanSupplier stopWhen;
    private boolean stopped;
    private boolean stopRequested;    // by a callback, for this rank; the run ends after the step on every rank
    private boolean stoppedEarly;
    private boolean running;
    private int nonFiniteRun;         // consecutive steps skipped for a non-finite loss or gradient norm
    private long nonFiniteSteps;
    private final List<StepStats> history = new ArrayList<>();

    private Trainer(Builder b) {
        this.model = Objects.requireNonNull(b.model, "model");
        this.optimizer = Objects.requireNonNull(b.optimizer, "optimizer");
        this.config = Objects.requireNonNull(b.config, "config").validate();
        this.trainData = Objects.requireNonNull(b.trainData, "trainData");
        this.evalData = b.evalData;
        this.evaluations = List.copyOf(b.evaluations);
        this.callbacks = List.copyOf(b.callbacks);
        this.padId = b.padId;
        this.dist = b.distributed;
        this.stopWhen = b.stopWhen;
        checkLayout(config, dist.replicas(), dist.modelRanks());
        if (!evaluations.isEmpty() && dist.splitsModel()) {
            throw new CollieException("evaluations (generation, classification) run with data parallelism only for"
                    + " now: this model is split over " + dist.modelRanks() + " tensor/pipeline-parallel ranks");
        }
        evaluationKeys();       // two evaluations reporting one name are refused before any step
        int cores = Math.max(1, Runtime.getRuntime().availableProcessors() / Math.max(1, b.localRanks));
        int workers = GradientRoute.singleStream(dist, optimizer) ? 1 : config.workerThreads();
        if (trainData.size() == 0) {
            throw new CollieException("training data is empty");
        }
        checkLossTokens(trainData);
        this.loader = DataLoader.builder(trainData, collator()).microBatchSize(config.trainMicroBatchSize())
                .gradAccum(config.gradientAccumulationSteps()).shuffle(config.shuffle()).seed(config.seed())
                .numReplicas(dist.replicas()).rank(dist.replicaRank()).build();
        if (loader.stepsPerEpoch() == 0) {
            throw new CollieException("training data has " + trainData.size() + " rows, fewer than one step needs");
        }
        this.runner = dist.runner(model, workers, cores);
        if (config.activations() != ActivationDtype.FP32) {
            checkActivationDtype(model, config.activationDtype());
            runner.setActivationDtype(config.activations());
        }
        this.route = GradientRoute.compose(dist, optimizer, config);
        long all = (long) loader.stepsPerEpoch() * config.trainEpochs();
        this.totalSteps = config.maxSteps() > 0 ? Math.min(config.maxSteps(), all) : all;
        this.schedule = b.schedule != null ? b.schedule
                : LrSchedule.named(config.lrSchedule(), config.lr(), config.warmupSteps(), totalSteps);
    }

    public static Builder builder() {
        return new Builder();
    }

    private Collator collator() {
        return new Collator(padId, false);
    }

    public LanguageModel model() {
        return model;
    }

    public Optimizer optimizer() {
        return optimizer;
    }

    public CollieConfig config() {
        return config;
    }

    /** Optimizer steps taken so far. */
    public long globalStep() {
        return globalStep;
    }

    /** Optimizer steps this run will take. */
    public long totalSteps() {
        return totalSteps;
    }

    /**
     * Whether the last {@link #train} ended early because its {@link Builder#stopWhen stop condition} held (on any
     * rank) after a step.
     */
    public boolean stopped() {
        return stopped;
    }

    /**
     * Asks the run to end after the step in progress (early stopping): every rank ends after the same step, since
     * the ranks agree after every step whether any of them asked, and {@link #stoppedEarly()} says so. Asked before
     * the first step (in {@link Callback#onTrainBegin}, from a state every rank restored alike), no step is taken.
     */
    public void requestStop() {
        stopRequested = true;
    }

    /**
     * Whether the last {@link #train} ended before its last step because a callback {@link #requestStop asked} on
     * some rank (and not because of the {@link Builder#stopWhen stop condition}, which {@link #stopped()} reports).
     */
    public boolean stoppedEarly() {
        return stoppedEarly;
    }

    /** Whether {@link #train} is in progress (from {@link Callback#onTrainBegin} to {@link Callback#onTrainEnd}). */
    public boolean running() {
        return running;
    }

    /** The epoch in progress, from 0 (after the last one, the number of epochs run). */
    public int epoch() {
        return epoch;
    }

    /** Optimizer steps in one pass over the training data. */
    public int stepsPerEpoch() {
        return loader.stepsPerEpoch();
    }

    /**
     * The names of the results {@link #evaluate()} reports, which a callback may watch ({@link TrackedMetric}):
     * {@link #EVALUATION_KEYS}, or none without evaluation data. An evaluator added to the Trainer adds the keys it
     * declares here.
     */
    public Set<String> evaluationKeys() {
        Set<String> keys = new LinkedHashSet<>(evalData == null ? Set.of() : EVALUATION_KEYS);
        for (Evaluation e : evaluations) {
            for (String k : e.producedKeys()) {
                if (!keys.add(k)) {
                    throw new CollieException("two evaluations report '" + k + "' (the Trainer's own evaluation"
                            + " reports " + EVALUATION_KEYS + " when it has evaluation data)");
                }
            }
        }
        return Collections.unmodifiableSet(keys);
    }

    /** Whether anything is evaluated: evaluation data, or an {@link Evaluation}. */
    private boolean evaluates() {
        return evalData != null || !evaluations.isEmpty();
    }

    /** Steps skipped so far because their loss or gradient norm was not finite. */
    public long nonFiniteSteps() {
        return nonFiniteSteps;
    }

    /** Measurements of every step so far. */
    public List<StepStats> history() {
        return List.copyOf(history);
    }

    /**
     * Writes a training checkpoint (parameters, optimizer state, position) into {@code dir}. Under data
     * parallel the replicas are identical and only rank 0 writes, except for ZeRO's optimizer shards,
     * which every replica writes into the same checkpoint.
     */
    public void save(Path dir) {
        try (Scope whole = dist.gatherParameters()) {
            if (splitState()) {
                TrainingCheckpoint.save(dir, heldParameters(), optimizer, config, globalStep, epoch, shards(),
                        callbackStates());
            } else if (isLeadRank()) {
                TrainingCheckpoint.save(dir, model.module().namedParameters(), optimizer, config, globalStep, epoch,
                        null, callbackStates());
            }
        }
        callbacks.forEach(c -> c.onSave(this, dir));
    }

    /**
     * Restores only the weights of checkpoint {@code dir} (written by {@link #save}) into the model, on every rank
     * and under any layout; the optimizer state and the position stay as they are. A collective: it returns once
     * every rank has read the checkpoint, so that one may then delete it. Returns the checkpoint's position.
     */
    public TrainingCheckpoint.Position loadWeights(Path dir) {
        TrainingCheckpoint.Position pos;
        try (Scope whole = dist.gatherParameters()) {
            pos = TrainingCheckpoint.loadWeights(dir, heldParameters(), splitState() ? shards() : null);
        }
        dist.anyRank(false);       // a collective over every rank: all have read it
        return pos;
    }

    /** The {@link StatefulCallback}s by the key their state is saved under: the simple class name, then #2, #3. */
    private Map<String, StatefulCallback> statefulCallbacks() {
        Map<String, StatefulCallback> out = new LinkedHashMap<>();
        for (Callback c : callbacks) {
            if (c instanceof StatefulCallback s) {
                String name = c.getClass().getSimpleName();
                String key = name;
                for (int n = 2; out.containsKey(key); n++) {
                    key = name + "#" + n;
                }
                out.put(key, s);
            }
        }
        return out;
    }

    private Map<String, ObjectNode> callbackStates() {
        Map<String, ObjectNode> out = new LinkedHashMap<>();
        statefulCallbacks().forEach((key, c) -> out.put(key, c.saveState()));
        return out;
    }

    /** The callbacks, in the order they run. */
    List<Callback> callbacks() {
        return callbacks;
    }

    /**
     * Whether this trainer reports and keeps files for the run: rank 0 of data parallel (and the model's lead
     * rank under tensor or pipeline parallelism), or the only rank.
     */
    public boolean isLeadRank() {
        return dist.isLeadRank();
    }

    /** Whether ranks hold different state, so that each writes its part of a checkpoint (ZeRO, tensor or pipeline parallel). */
    private boolean splitState() {
        return dist.shardsOptimizerState() || dist.splitsModel();
    }

    private Map<String, Parameter> heldParameters() {
        return dist.heldParameters(model);
    }

    /**
     * Every rank writes its optimizer state; one data-parallel replica writes each part of the model. The
     * barrier passes the model's ranks and then the replicas: once the lead rank is through, every rank is.
     */
    private TrainingCheckpoint.Shards shards() {
        int dpRank = dist.replicaRank();
        int dpSize = dist.replicas();
        boolean split = dist.splitsModel();
        int part = split ? dist.modelRank() : 0;
        int parts = split ? dist.modelRanks() : 1;
        Runnable barrier = () -> {
            dist.modelBarrier();
            dist.average(0);
        };
        return new TrainingCheckpoint.Shards(part * dpSize + dpRank, parts * dpSize, barrier, part, parts,
                dpRank == 0);
    }

    /** Restores a checkpoint written by {@link #save}; {@link #train} then continues with the next step. */
    public void resume(Path dir) {
        TrainingCheckpoint.compareConfig(dir, config).forEach(LOG::warn);
        TrainingCheckpoint.Position pos;
        try (Scope whole = dist.gatherParameters()) {
            pos = splitState() ? TrainingCheckpoint.load(dir, heldParameters(), optimizer, shards())
                    : TrainingCheckpoint.load(dir, model.module(), optimizer);
        }
        if (pos.globalStep() > totalSteps) {
            throw new CollieException(dir + ": the checkpoint is at step " + pos.globalStep()
                    + ", beyond this run's " + totalSteps + " steps");
        }
        globalStep = pos.globalStep();
        epoch = (int) (globalStep / loader.stepsPerEpoch());
        Map<String, JsonNode> states = TrainingCheckpoint.callbackStates(dir);
        statefulCallbacks().forEach((key, c) -> {
            if (states.containsKey(key)) {
                c.loadState(states.get(key));
            } else if (isLeadRank()) {
                LOG.warn("{}: the checkpoint keeps no state of callback {}: it starts afresh", dir, key);
            }
        });
        callbacks.forEach(c -> c.onLoad(this, dir));
    }

    /** Runs training to the end; returns the measurements of every step. */
    public List<StepStats> train() {
        // under tensor or pipeline parallelism: what this rank holds (its shard of its stage)
        boolean split = dist.splitsModel();
        long trainable = 0;
        long all = 0;
        for (Parameter p : new LinkedHashSet<>(heldParameters().values())) {
            all += p.numel();
            trainable += p.requiresGrad() ? p.numel() : 0;
        }
        if (isLeadRank()) {
            LOG.info(String.format("trainable params: %d || all params: %d || trainable%%: %.4f%s", trainable, all,
                    100.0 * trainable / Math.max(1, all), split ? " (on this rank)" : ""));
            idleSettings(config, totalSteps - globalStep, evaluates()).forEach(LOG::warn);
        }
        stopped = false;
        stoppedEarly = false;
        stopRequested = false;
        running = true;
        try {
            callbacks.forEach(c -> c.onTrainBegin(this));
            stoppedEarly = stopRequested;
            outer:
            for (; epoch < config.trainEpochs() && !stoppedEarly; epoch++) {
                int e = epoch;
                callbacks.forEach(c -> c.onEpochBegin(this, e));
                int first = (int) (globalStep - (long) epoch * loader.stepsPerEpoch());
                for (int s = Math.max(0, first); s < loader.stepsPerEpoch(); s++) {
                    if (globalStep >= totalSteps) {
                        break outer;
                    }
                    trainStep(loader.step(epoch, s));
                    if (config.evalPerNSteps() > 0 && evaluates() && globalStep % config.evalPerNSteps() == 0) {
                        evaluate();
                    }
                    long done = globalStep;
                    callbacks.forEach(c -> c.onStepEnd(this, done));
                    // every rank asks, after every step, so all stop at the same one
                    boolean condition = stopWhen.getAsBoolean();
                    if (dist.anyRank(condition || stopRequested)) {
                        stopped = dist.anyRank(condition);
                        stoppedEarly = !stopped;
                        break outer;
                    }
                }
                callbacks.forEach(c -> c.onEpochEnd(this, e));
            }
            callbacks.forEach(c -> c.onTrainEnd(this));
        } finally {
            running = false;
            runner.close();    // worker threads end with the run; a later train() starts new ones
            callbacks.forEach(c -> c.onTrainExit(this));
        }
        return history();
    }

    /**
     * The settings that cannot act in a run of {@code steps} steps (a warm-up as long as the run, an evaluation
     * interval beyond its last step), each as a sentence naming the field: warned once when training starts.
     */
    static List<String> idleSettings(CollieConfig c, long steps, boolean evalData) {
        List<String> out = new ArrayList<>();
        if (c.warmupSteps() > 0 && c.warmupSteps() >= steps) {
            out.add("config: warmup_steps = " + c.warmupSteps() + " is not below this run's " + steps + " step"
                    + (steps == 1 ? "" : "s") + ": the learning rate never reaches lr = " + c.lr());
        }
        if (evalData && c.evalPerNSteps() > steps) {
            out.add("config: eval_per_n_steps = " + c.evalPerNSteps() + " is beyond this run's " + steps + " step"
                    + (steps == 1 ? "" : "s") + ": no evaluation will run");
        }
        return out;
    }

    /** One optimizer step over its micro-batches. */
    private void trainStep(List<Batch> micro) {
        long step = globalStep;
        callbacks.forEach(c -> c.onBatchBegin(this, step));
        long t0 = System.nanoTime();
        long tokens = 0;
        for (Batch b : micro) {
            tokens += b.tokenCount();
        }
        double lr = schedule.at(step);
        double loss;
        double gradNorm = Double.NaN;
        boolean skipped;
        boolean fusedStep = optimizer instanceof FusedBackwardOptimizer;
        if (optimizer instanceof FusedBackwardOptimizer fused) {
            fused.beginStep(lr);
            loss = Double.NaN;
            for (int pass = 0; pass < fused.passes(); pass++) {
                fused.beginPass(pass);
                double l = runner.forwardBackward(micro);
                route.finishBackward();
                loss = pass == 0 ? l : loss;
            }
            dist.afterStep();
            loss = dist.average(loss);
            skipped = fused.withheldLastStep() || !Double.isFinite(loss);
        } else {
            loss = runner.forwardBackward(micro);
            route.finishBackward();            // reduced over the replicas, summed over stages sharing a weight
            loss = dist.average(loss);
            List<Parameter> params = dist.gradientHolders(model, optimizer);
            // the same figures on every rank (an average, a norm over all ranks), so every rank skips together
            gradNorm = dist.gradNorm(params);
            skipped = !Double.isFinite(loss) || !Double.isFinite(gradNorm);
            if (!skipped) {
                if (config.clipGradNorm() > 0) {
                    GradClip.scaleToNorm(params, gradNorm, config.clipGradNorm());
                }
                optimizer.step(lr);
            }
            params.forEach(Parameter::zeroGrad);
            dist.afterStep();
            if (!skipped && optimizer instanceof HessianEstimator h && (step + 1) % h.hessianInterval() == 0) {
                refreshHessian(h, micro, step);
            }
        }
        globalStep++;
        if (skipped) {
            countNonFinite("loss " + loss + (!fusedStep ? ", gradient norm " + gradNorm
                    : Double.isFinite(loss) ? ", a gradient not finite" : ""));
        } else {
            nonFiniteRun = 0;
        }
        double sec = (System.nanoTime() - t0) / 1e9;
        // tokens and tokens/s count every data-parallel replica; TGS is CoLLiE's: this replica's tokens over its
        // tp × pp ranks and the step's seconds (tokens per device per second)
        long rankTokens = tokens;
        if (dist.replicas() > 1) {
            tokens = Math.round(dist.average(tokens) * dist.replicas());
        }
        StepStats st = new StepStats(globalStep, totalSteps, epoch, loss, lr, gradNorm, tokens, sec,
                tokens / sec, rankTokens / (dist.modelRanks() * sec), Memory.residentBytes(), Memory.peakResidentBytes(), skipped);
        history.add(st);
        if (globalStep % config.logPerNSteps() == 0) {
            LOG.debug("step {} loss {} lr {} tokens/s {}", st.step(), st.loss(), st.lr(), st.tokensPerSecond());
        }
        callbacks.forEach(c -> c.onBatchEnd(this, st));
    }

    /**
     * A step whose loss or gradient norm is not finite was skipped (as dynamic loss scaling skips an overflow):
     * counted, warned, and after {@code max_nonfinite_steps} such steps in a row the run stops, the weights as they
     * were before the first of them.
     */
    private void countNonFinite(String figures) {
        nonFiniteRun++;
        nonFiniteSteps++;
        if (nonFiniteRun >= config.maxNonFiniteSteps()) {
            throw new CollieException("training stopped at step " + globalStep + ": " + nonFiniteRun
                    + " consecutive steps had a non-finite loss or gradient norm (last: " + figures + "; config"
                    + " max_nonfinite_steps = " + config.maxNonFiniteSteps() + "); their updates were withheld, so the"
                    + " weights are those of step " + (globalStep - nonFiniteRun) + ". A smaller lr, clip_grad_norm or"
                    + " warm-up usually helps");
        }
        if (isLeadRank()) {
            LOG.warn("step {}: {}: the update was skipped ({} in a row; the run stops at {})", globalStep, figures,
                    nonFiniteRun, config.maxNonFiniteSteps());
        }
    }

    /**
     * Narrowed activations are float32 arrays rounded to bf16: a model of another floating type (float64, as the
     * parity tests run) would silently keep them as computed, so it is refused instead.
     */
    private static void checkActivationDtype(LanguageModel model, String dtype) {
        for (Parameter p : model.module().parameters()) {
            if (p.dtype() != DataType.FLOAT) {
                throw new CollieException("config: activation_dtype = " + dtype + " needs a float32 model (its"
                        + " activations are rounded from float32); this one has " + p.dtype() + " parameters");
            }
        }
    }

    /**
     * Data in which no sample leaves a token for the loss would train on nothing (every loss 0/0): refused before
     * any work. Reads samples only until the first that has one (the first, in any usable data).
     */
    private static void checkLossTokens(Dataset data) {
        for (int i = 0; i < data.size(); i++) {
            if (data.get(i).hasLossToken()) {
                return;
            }
        }
        throw new CollieException("training data: none of its " + data.size() + " samples has a token the loss"
                + " counts (every label after the first position is " + Sample.IGNORE_INDEX + "): with"
                + " {\"input\", \"output\"} rows the output is empty or cut off by the sequence length");
    }

    /**
     * Sophia's Gauss-Newton-Bartlett estimate: labels sampled from the model's own softmax at every real
     * position (Gumbel-max, seeded by the config seed, the step and each row's tokens), the mean cross-entropy
     * against them back-propagated through the runner (the pipeline schedule, the tensor-parallel loss), and the
     * optimizer folds the squared gradients into its Hessian.
     */
    private void refreshHessian(HessianEstimator h, List<Batch> micro, long step) {
        runner.forwardBackwardSampled(micro, config.seed() * 1_000_003L + step);
        route.finishBackward();                // averaged over the replicas, summed over stages sharing a weight
        h.updateHessian();
        model.module().trainableParameters().forEach(Parameter::zeroGrad);
    }

    /**
     * Mean next-token loss over the evaluation data (token-weighted) and its perplexity, then each
     * {@link Evaluation}'s results, by name.
     */
    public Map<String, Double> evaluate() {
        if (!evaluates()) {
            throw new IllegalStateException("no evaluation data and no evaluation was given");
        }
        callbacks.forEach(c -> c.onEvaluateBegin(this));
        Map<String, Double> out = new LinkedHashMap<>();
        if (evalData != null) {
            out.putAll(evaluationLoss());
        }
        // the ranks evaluate different shares of the examples, so ZeRO-3's per-layer gathers would not line up:
        // the whole model stays present on every rank while the evaluations run
        try (Scope whole = evaluations.isEmpty() ? Scope.NONE : dist.gatherParameters()) {
            for (Evaluation e : evaluations) {
                out.putAll(e.evaluate());
            }
        }
        callbacks.forEach(c -> c.onEvaluateEnd(this, out));
        return out;
    }

    /** The {@link #EVALUATION_KEYS}: mean next-token loss over the evaluation data and its perplexity. */
    private Map<String, Double> evaluationLoss() {
        DataLoader evalLoader = DataLoader.builder(evalData, collator()).microBatchSize(config.evalBatchSize())
                .shuffle(false).build();
        double sum = 0;
        long count = 0;
        for (List<Batch> step : evalLoader.epoch(0)) {
            for (Batch b : step) {
                INDArray labels = model.labelsFor(b.labels());
                long n = CausalLmLoss.countedTokens(labels);
                if (n == 0) {
                    continue;
                }
                sum += runner.loss(b) * n;
                count += n;
            }
        }
        Map<String, Double> out = new LinkedHashMap<>();       // the EVALUATION_KEYS
        double loss = count == 0 ? Double.NaN : sum / count;
        out.put("loss", loss);
        out.put("ppl", Math.exp(loss));
        LOG.debug("eval at step {}: loss {} ppl {}", globalStep, loss, Math.exp(loss));
        return out;
    }

    /**
     * A config that asks for a parallel layout ({@code dp_size}, {@code tp_size}, {@code pp_size} above 1) gets that
     * layout or an error, never a silent single-rank run: the data-parallel replicas must be {@code dp_size} and the
     * ranks the model is split over {@code tp_size × pp_size}. A config that asks for none (all 1) takes the layout
     * the Trainer is given.
     */
    static void checkLayout(CollieConfig c, int replicas, int modelRanks) {
        boolean asks = c.dpSize() > 1 || c.tpSize() > 1 || c.ppSize() > 1;
        if (asks && (replicas != c.dpSize() || modelRanks != c.tpSize() * c.ppSize())) {
            throw new CollieException("the config asks for dp_size " + c.dpSize() + " × tp_size " + c.tpSize()
                    + " × pp_size " + c.ppSize() + ", but this Trainer has " + replicas + " data-parallel replica"
                    + (replicas == 1 ? "" : "s") + " and its model on " + modelRanks + " rank"
                    + (modelRanks == 1 ? "" : "s") + ": build that layout with Parallelism.builder().dp("
                    + c.dpSize() + ").tp(" + c.tpSize() + ").pp(" + c.ppSize() + ") and par.configure(Trainer.builder()),"
                    + " or set the sizes to 1");
        }
    }

    /** Builder of a {@link Trainer}. */
    public static final class Builder {
        private LanguageModel model;
        private Optimizer optimizer;
        private CollieConfig config = CollieConfig.defaults();
        private Dataset trainData;
        private Dataset evalData;
        private List<Evaluation> evaluations = List.of();
        private final List<Callback> callbacks = new ArrayList<>();
        private LrSchedule schedule;
        private int padId;
        private Distributed distributed = Distributed.SINGLE;
        private int localRanks = 1;
        private BooleanSupplier stopWhen = () -> false;

        public Builder model(LanguageModel m) { this.model = m; return this; }
        public Builder optimizer(Optimizer o) { this.optimizer = o; return this; }
        public Builder config(CollieConfig c) { this.config = c; return this; }
        public Builder trainData(Dataset d) { this.trainData = d; return this; }
        public Builder evalData(Dataset d) { this.evalData = d; return this; }
        /**
         * Evaluations run with the evaluation loss every {@code eval_per_n_steps} (e.g. collie-models'
         * {@code Evaluator}); data-parallel layouts only, for now: the model must not be split over ranks.
         */
        public Builder evaluations(Evaluation... e) { this.evaluations = List.of(e); return this; }
        public Builder callbacks(Callback... cs) { this.callbacks.addAll(List.of(cs)); return this; }
        /** Overrides the schedule named in the config. */
        public Builder lrSchedule(LrSchedule s) { this.schedule = s; return this; }
        /** Token id used to pad rows (default 0; labels are padded with -100 whatever it is). */
        public Builder padId(int id) { this.padId = id; return this; }
        /**
         * How this rank takes part in a parallel run (collie-parallel's {@code Parallelism.distributed()}, or a
         * data-parallel reduction alone); {@link Distributed#SINGLE} by default.
         */
        public Builder distributed(Distributed d) { this.distributed = Objects.requireNonNull(d, "distributed"); return this; }
        /**
         * A condition asked after every step (e.g. a signal handler's flag): once it holds on any rank, every rank
         * ends training after that step, {@link Callback#onTrainEnd} runs (a checkpoint callback saves the step) and
         * {@link Trainer#stopped()} says so.
         */
        public Builder stopWhen(BooleanSupplier s) { this.stopWhen = Objects.requireNonNull(s, "stopWhen"); return this; }
        /** Ranks running as threads of this JVM (they share its cores); default 1. */
        public Builder localRanks(int n) { this.localRanks = n; return this; }

        public Trainer build() {
            return new Trainer(this);
        }
    }
}
