package dev.collie.core.train;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.collie.core.CollieException;
import dev.collie.core.tensor.ActivationDtype;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Set;

/**
 * Training settings, immutable, with CoLLiE's field names in JSON/YAML ({@code train_micro_batch_size},
 * {@code gradient_accumulation_steps}, ...). {@link #validate()} runs before any work and names the
 * offending field. Build in code with {@link #builder()}, or read a file with {@link #load(Path)}.
 * {@code dp_size}, {@code tp_size} and {@code pp_size} are the parallel layout asked for: {@code collie train} runs
 * it (its --dp/--tp/--pp override them), and a Trainer given another layout refuses to start.
 */
public record CollieConfig(
        @JsonProperty("seed") long seed,
        @JsonProperty("train_epochs") int trainEpochs,
        @JsonProperty("max_steps") long maxSteps,
        @JsonProperty("train_micro_batch_size") int trainMicroBatchSize,
        @JsonProperty("gradient_accumulation_steps") int gradientAccumulationSteps,
        @JsonProperty("eval_per_n_steps") int evalPerNSteps,
        @JsonProperty("eval_batch_size") int evalBatchSize,
        @JsonProperty("lr") double lr,
        @JsonProperty("lr_schedule") String lrSchedule,
        @JsonProperty("warmup_steps") long warmupSteps,
        @JsonProperty("clip_grad_norm") double clipGradNorm,
        @JsonProperty("log_per_n_steps") int logPerNSteps,
        @JsonProperty("checkpointing") boolean checkpointing,
        @JsonProperty("shuffle") boolean shuffle,
        @JsonProperty("dp_size") int dpSize,
        @JsonProperty("tp_size") int tpSize,
        @JsonProperty("pp_size") int ppSize,
        @JsonProperty("worker_threads") int workerThreads,
        @JsonProperty("max_nonfinite_steps") int maxNonFiniteSteps,
        @JsonProperty("seq_len") int seqLen,
        @JsonProperty("activation_dtype") String activationDtype) {

    private static final CollieConfig DEFAULTS = new CollieConfig(42, 1, -1, 1, 1, 0, 1, 1e-3, "constant", 0, 0.0,
            1, false, true, 1, 1, 1, 0, 3, 0, "fp32");

    /**
     * Defaults: seed 42, 1 epoch, micro-batch 1, no accumulation, lr 1e-3 constant, no clipping, shuffled; a run
     * stops after 3 consecutive steps with a non-finite loss or gradient norm ({@code max_nonfinite_steps}, collie's
     * own field: each such step is skipped); activations saved for backward in fp32 ({@code activation_dtype},
     * collie's own field: {@code bf16} halves their memory, see {@link ActivationDtype}).
     */
    public static CollieConfig defaults() {
        return DEFAULTS;
    }

    public static Builder builder() {
        return new Builder(DEFAULTS);
    }

    public Builder toBuilder() {
        return new Builder(this);
    }

    /** {@code activation_dtype} parsed (validate first). */
    public ActivationDtype activations() {
        return ActivationDtype.parse(activationDtype);
    }

    /** Rows per optimizer step on one data-parallel rank. */
    public int rowsPerStep() {
        return trainMicroBatchSize * gradientAccumulationSteps;
    }

    /** Checks every value; the message names the field. Returns this. */
    public CollieConfig validate() {
        positive("train_epochs", trainEpochs);
        positive("train_micro_batch_size", trainMicroBatchSize);
        positive("gradient_accumulation_steps", gradientAccumulationSteps);
        positive("eval_batch_size", evalBatchSize);
        positive("log_per_n_steps", logPerNSteps);
        positive("dp_size", dpSize);
        positive("tp_size", tpSize);
        positive("pp_size", ppSize);
        positive("max_nonfinite_steps", maxNonFiniteSteps);
        if (workerThreads < 0) {
            throw bad("worker_threads", workerThreads, "must be >= 0 (0 = one per core)");
        }
        if (seqLen < 0) {
            throw bad("seq_len", seqLen, "must be >= 0 (0 = not set: the data's own lengths)");
        }
        if (evalPerNSteps < 0) {
            throw bad("eval_per_n_steps", evalPerNSteps, "must be >= 0 (0 turns evaluation off)");
        }
        if (maxSteps == 0 || maxSteps < -1) {
            throw bad("max_steps", maxSteps, "must be positive, or -1 for 'all epochs'");
        }
        if (!(lr > 0) || Double.isInfinite(lr)) {
            throw bad("lr", lr, "must be a positive number");
        }
        if (warmupSteps < 0) {
            throw bad("warmup_steps", warmupSteps, "must be >= 0");
        }
        if (clipGradNorm < 0 || Double.isNaN(clipGradNorm)) {
            throw bad("clip_grad_norm", clipGradNorm, "must be >= 0 (0 turns clipping off)");
        }
        if (lrSchedule == null || !Set.of("constant", "linear", "cosine").contains(lrSchedule)) {
            throw bad("lr_schedule", lrSchedule, "must be one of constant, linear, cosine");
        }
        if (activationDtype == null || !Set.of("fp32", "bf16").contains(activationDtype)) {
            throw bad("activation_dtype", activationDtype, "must be fp32 or bf16");
        }
        return this;
    }

    private static void positive(String field, long v) {
        if (v <= 0) {
            throw bad(field, v, "must be positive");
        }
    }

    private static CollieException bad(String field, Object v, String why) {
        return new CollieException("config: " + field + " = " + v + " " + why);
    }

    /** Reads a JSON ({@code .json}) or YAML ({@code .yaml}/{@code .yml}) file; missing fields take defaults. */
    public static CollieConfig load(Path file) {
        String name = file.getFileName().toString();
        ObjectMapper mapper = name.endsWith(".yaml") || name.endsWith(".yml") ? new ObjectMapper(new YAMLFactory())
                : new ObjectMapper();
        mapper.enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
        try {
            Builder b = builder();
            mapper.readerForUpdating(b.fields).readValue(Files.readString(file));
            return b.build().validate();
        } catch (NoSuchFileException e) {
            throw new CollieException(file + ": no such config file");
        } catch (UnrecognizedPropertyException e) {
            throw new CollieException(file + where(e.getLocation()) + ": unknown field '" + e.getPropertyName()
                    + "' (known: " + e.getKnownPropertyIds() + ")");
        } catch (JsonProcessingException e) {
            throw new CollieException(file + where(e.getLocation()) + ": " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new CollieException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    private static String where(JsonLocation loc) {
        return loc == null ? "" : ":" + loc.getLineNr() + ":" + loc.getColumnNr();
    }

    /** Mutable builder for {@link CollieConfig}. */
    public static final class Builder {
        /** Jackson binds file values onto this bean, field by field, so omitted fields keep their defaults. */
        static final class Fields {
            public long seed;
            public int train_epochs;
            public long max_steps;
            public int train_micro_batch_size;
            public int gradient_accumulation_steps;
            public int eval_per_n_steps;
            public int eval_batch_size;
            public double lr;
            public String lr_schedule;
            public long warmup_steps;
            public double clip_grad_norm;
            public int log_per_n_steps;
            public boolean checkpointing;
            public boolean shuffle;
            public int dp_size;
            public int tp_size;
            public int pp_size;
            public int worker_threads;
            public int max_nonfinite_steps;
            public int seq_len;
            public String activation_dtype;
        }

        private final Fields fields = new Fields();

        private Builder(CollieConfig c) {
            fields.seed = c.seed;
            fields.train_epochs = c.trainEpochs;
            fields.max_steps = c.maxSteps;
            fields.train_micro_batch_size = c.trainMicroBatchSize;
            fields.gradient_accumulation_steps = c.gradientAccumulationSteps;
            fields.eval_per_n_steps = c.evalPerNSteps;
            fields.eval_batch_size = c.evalBatchSize;
            fields.lr = c.lr;
            fields.lr_schedule = c.lrSchedule;
            fields.warmup_steps = c.warmupSteps;
            fields.clip_grad_norm = c.clipGradNorm;
            fields.log_per_n_steps = c.logPerNSteps;
            fields.checkpointing = c.checkpointing;
            fields.shuffle = c.shuffle;
            fields.dp_size = c.dpSize;
            fields.tp_size = c.tpSize;
            fields.pp_size = c.ppSize;
            fields.worker_threads = c.workerThreads;
            fields.max_nonfinite_steps = c.maxNonFiniteSteps;
            fields.seq_len = c.seqLen;
            fields.activation_dtype = c.activationDtype;
        }

        public Builder seed(long v) { fields.seed = v; return this; }
        public Builder trainEpochs(int v) { fields.train_epochs = v; return this; }
        public Builder maxSteps(long v) { fields.max_steps = v; return this; }
        public Builder trainMicroBatchSize(int v) { fields.train_micro_batch_size = v; return this; }
        public Builder gradientAccumulationSteps(int v) { fields.gradient_accumulation_steps = v; return this; }
        public Builder evalPerNSteps(int v) { fields.eval_per_n_steps = v; return this; }
        public Builder evalBatchSize(int v) { fields.eval_batch_size = v; return this; }
        public Builder lr(double v) { fields.lr = v; return this; }
        public Builder lrSchedule(String v) { fields.lr_schedule = v; return this; }
        public Builder warmupSteps(long v) { fields.warmup_steps = v; return this; }
        public Builder clipGradNorm(double v) { fields.clip_grad_norm = v; return this; }
        public Builder logPerNSteps(int v) { fields.log_per_n_steps = v; return this; }
        public Builder checkpointing(boolean v) { fields.checkpointing = v; return this; }
        public Builder shuffle(boolean v) { fields.shuffle = v; return this; }
        public Builder dpSize(int v) { fields.dp_size = v; return this; }
        public Builder tpSize(int v) { fields.tp_size = v; return this; }
        public Builder ppSize(int v) { fields.pp_size = v; return this; }
        /** Threads that share the model and split each micro-batch's rows, 0 = one per core (see {@link StepRunner}). */
        public Builder workerThreads(int v) { fields.worker_threads = v; return this; }
        /** Consecutive steps with a non-finite loss or gradient norm (each skipped) after which the run stops. */
        public Builder maxNonFiniteSteps(int v) { fields.max_nonfinite_steps = v; return this; }
        /**
         * Tokens per row the data is packed or cut to ({@code collie train --seq}), 0 = not set. The Trainer takes
         * rows as the data gives them; the value is kept so that a resumed run can be checked to read the same rows.
         */
        public Builder seqLen(int v) { fields.seq_len = v; return this; }
        /**
         * How training forwards store the activations backward reads: {@code fp32} (default) or {@code bf16}
         * (rounded when saved, widened when read; half the memory, a float32 model only).
         */
        public Builder activationDtype(String v) { fields.activation_dtype = v; return this; }

        /** The config, not yet validated (call {@link CollieConfig#validate()} or let the Trainer do it). */
        public CollieConfig build() {
            Fields f = fields;
            return new CollieConfig(f.seed, f.train_epochs, f.max_steps, f.train_micro_batch_size,
                    f.gradient_accumulation_steps, f.eval_per_n_steps, f.eval_batch_size, f.lr, f.lr_schedule,
                    f.warmup_steps, f.clip_grad_norm, f.log_per_n_steps, f.checkpointing, f.shuffle, f.dp_size,
                    f.tp_size, f.pp_size, f.worker_threads, f.max_nonfinite_steps, f.seq_len, f.activation_dtype);
        }
    }
}
