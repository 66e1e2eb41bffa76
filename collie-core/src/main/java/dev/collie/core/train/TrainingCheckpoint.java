package dev.collie.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.io.AtomicFiles;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A training checkpoint for exact resume: every parameter ({@code model.safetensors}, all of them,
 * adapters and frozen weights alike), the optimizer state ({@code optimizer.safetensors}) and a JSON
 * manifest ({@code trainer.json}: step, epoch, the config, the state of {@link StatefulCallback}s). The data
 * position follows from the step,
 * since the loader's order depends only on the seed and epoch. The directory is written next to its
 * final place and renamed into it, so a crash leaves either the old checkpoint or the new one.
 */
public final class TrainingCheckpoint {
    static final String FORMAT = "collie-training-checkpoint";
    private static final String MANIFEST = "trainer.json";
    private static final String MODEL = "model.safetensors";
    private static final String OPTIMIZER = "optimizer.safetensors";
    private static final String CALLBACKS = "callbacks";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** What a checkpoint says about where training stood. */
    public record Position(long globalStep, int epoch) {
    }

    private TrainingCheckpoint() {
    }

    /**
     * How the ranks of a run take part when each holds part of the state: this rank's index among the
     * {@code count} that write an optimizer file (ZeRO shards, or the ranks of a model split by tensor or
     * pipeline parallelism), a barrier all of them pass together, and which part of the model this rank
     * holds ({@code modelPart} of {@code modelParts}; {@code writesModel} on one rank per part).
     */
    public record Shards(int rank, int count, Runnable barrier, int modelPart, int modelParts, boolean writesModel) {
        /** Optimizer shards over replicas of one whole model (ZeRO under data parallelism alone). */
        public Shards(int rank, int count, Runnable barrier) {
            this(rank, count, barrier, 0, 1, rank == 0);
        }
    }

    /** Writes model, optimizer and position into {@code dir} (replacing what is there). */
    public static void save(Path dir, Module model, Optimizer optimizer, CollieConfig config, long globalStep, int epoch) {
        save(dir, model, optimizer, config, globalStep, epoch, null);
    }

    /**
     * As {@link #save(Path, Module, Optimizer, CollieConfig, long, int)}; with {@code shards}, every replica
     * calls it and writes its own {@code optimizer-rank<r>-of-<n>.safetensors}, and replica 0 writes the
     * rest and moves the directory into place once all shards are written.
     */
    public static void save(Path dir, Module model, Optimizer optimizer, CollieConfig config, long globalStep,
                            int epoch, Shards shards) {
        save(dir, model.namedParameters(), optimizer, config, globalStep, epoch, shards, Map.of());
    }

    /**
     * As {@link #save(Path, Module, Optimizer, CollieConfig, long, int, Shards)} for the parameters this rank
     * holds ({@code params} by name; under pipeline parallelism one stage's), with the callbacks' states by key
     * (written by the rank that writes the manifest; a number in them that is not finite is refused, naming it).
     */
    public static void save(Path dir, Map<String, Parameter> params, Optimizer optimizer, CollieConfig config,
                            long globalStep, int epoch, Shards shards, Map<String, ObjectNode> callbackStates) {
        callbackStates.forEach((key, state) -> requireFinite(dir, "callbacks." + key, state));
        Path abs = dir.toAbsolutePath();
        Path parent = abs.getParent();
        boolean lead = shards == null || shards.rank() == 0;
        try {
            Path tmp;
            if (shards == null) {
                tmp = AtomicFiles.newSiblingDirectory(abs);
            } else {
                tmp = parent.resolve(abs.getFileName() + ".tmp-step" + globalStep);
                if (lead) {
                    Files.createDirectories(parent);
                    if (Files.exists(tmp)) {
                        AtomicFiles.deleteTree(tmp);
                    }
                    Files.createDirectories(tmp);
                }
                shards.barrier().run();
            }
            Map<String, INDArray> state = new TreeMap<>(optimizer.stateDict());
            SafeTensors.write(tmp.resolve(optimizerFile(shards)), state,
                    Map.of("optimizer", optimizer.getClass().getName()));
            if (shards == null || shards.writesModel()) {
                SafeTensors.write(tmp.resolve(modelFile(shards)), distinctParameters(params), Map.of("format", "pt"));
            }
            if (shards != null) {
                shards.barrier().run();
            }
            if (lead) {
                ObjectNode m = JSON.createObjectNode();
                m.put("format", FORMAT);
                m.put("version", 1);
                m.put("global_step", globalStep);
                m.put("epoch", epoch);
                m.put("optimizer", optimizer.getClass().getName());
                m.put("optimizer_shards", shards == null ? 1 : shards.count());
                m.put("model_parts", shards == null ? 1 : shards.modelParts());
                m.set("config", JSON.valueToTree(config));
                if (!callbackStates.isEmpty()) {
                    ObjectNode states = m.putObject(CALLBACKS);
                    callbackStates.forEach(states::set);
                }
                AtomicFiles.writeString(tmp.resolve(MANIFEST), JSON.writeValueAsString(m));
                AtomicFiles.replaceDirectory(tmp, abs);
            }
            if (shards != null) {
                shards.barrier().run();
            }
        } catch (IOException e) {
            throw new CollieException(dir + ": cannot write the checkpoint: " + e.getMessage(), e);
        }
    }

    private static String modelFile(Shards shards) {
        return shards == null || shards.modelParts() == 1 ? MODEL
                : "model-part" + shards.modelPart() + "-of-" + shards.modelParts() + ".safetensors";
    }

    private static String optimizerFile(Shards shards) {
        return shards == null || shards.count() == 1 ? OPTIMIZER
                : "optimizer-rank" + shards.rank() + "-of-" + shards.count() + ".safetensors";
    }

    /** Restores parameters and optimizer state from {@code dir}; returns the saved position. */
    public static Position load(Path dir, Module model, Optimizer optimizer) {
        return load(dir, model, optimizer, null);
    }

    /** As {@link #load(Path, Module, Optimizer)}; a sharded checkpoint needs the same number of replicas. */
    public static Position load(Path dir, Module model, Optimizer optimizer, Shards shards) {
        return load(dir, model.namedParameters(), optimizer, shards);
    }

    /** As {@link #load(Path, Module, Optimizer, Shards)} for the parameters this rank holds. */
    public static Position load(Path dir, Map<String, Parameter> params, Optimizer optimizer, Shards shards) {
        Path manifest = dir.resolve(MANIFEST);
        JsonNode m = modelManifest(dir, shards);
        String saved = m.path("optimizer").asText();
        if (!saved.equals(optimizer.getClass().getName())) {
            throw new CollieException(manifest + ": saved with optimizer " + saved + ", resuming with "
                    + optimizer.getClass().getName());
        }
        int savedShards = m.path("optimizer_shards").asInt(1);
        int now = shards == null ? 1 : shards.count();
        if (savedShards != now) {
            throw new CollieException(manifest + ": the optimizer state was saved in " + savedShards
                    + " shard(s), this run has " + now + " (resume with the same --dp, --tp, --pp and ZeRO stage)");
        }
        loadParameters(dir, params, shards);
        try (SafeTensors s = SafeTensors.open(dir.resolve(optimizerFile(shards)))) {
            Map<String, INDArray> state = new LinkedHashMap<>();
            for (String name : s.names()) {
                state.put(name, s.load(name));
            }
            optimizer.loadStateDict(state);
        }
        return position(m);
    }

    /**
     * Restores only the parameters from {@code dir} (this rank's part of them with {@code shards}); the optimizer
     * state is not read. Returns the saved position.
     */
    public static Position loadWeights(Path dir, Map<String, Parameter> params, Shards shards) {
        JsonNode m = modelManifest(dir, shards);
        loadParameters(dir, params, shards);
        return position(m);
    }

    /** The states of the {@link StatefulCallback}s saved in checkpoint {@code dir}, by key (none in an older one). */
    public static Map<String, JsonNode> callbackStates(Path dir) {
        Map<String, JsonNode> out = new LinkedHashMap<>();
        manifest(dir).path(CALLBACKS).fields().forEachRemaining(e -> out.put(e.getKey(), e.getValue()));
        return out;
    }

    private static Position position(JsonNode m) {
        return new Position(m.path("global_step").asLong(), m.path("epoch").asInt());
    }

    /** The manifest of {@code dir}, checked to be a training checkpoint whose model has this run's parts. */
    private static JsonNode modelManifest(Path dir, Shards shards) {
        Path manifest = dir.resolve(MANIFEST);
        JsonNode m = manifest(dir);
        if (!FORMAT.equals(m.path("format").asText())) {
            throw new CollieException(manifest + ": format is '" + m.path("format").asText() + "', expected " + FORMAT);
        }
        int savedParts = m.path("model_parts").asInt(1);
        int parts = shards == null ? 1 : shards.modelParts();
        if (savedParts != parts) {
            throw new CollieException(manifest + ": the model was saved in " + savedParts + " part(s) (tensor x"
                    + " pipeline parallel ranks), this run has " + parts + "; resume with the same --tp and --pp");
        }
        return m;
    }

    private static void loadParameters(Path dir, Map<String, Parameter> params, Shards shards) {
        Path modelPath = dir.resolve(modelFile(shards));
        try (SafeTensors w = SafeTensors.open(modelPath)) {
            for (Map.Entry<String, Parameter> e : distinctNamed(params).entrySet()) {
                if (!w.contains(e.getKey())) {
                    throw new CollieException(modelPath + ": parameter " + e.getKey() + " is missing");
                }
                long[] shape = w.info(e.getKey()).shape();
                Parameter p = e.getValue();
                if (!Arrays.equals(shape, p.shape())) {
                    throw new CollieException(modelPath + ": parameter " + e.getKey() + " has shape "
                            + Arrays.toString(shape) + ", the model has " + Arrays.toString(p.shape()));
                }
                p.data().assign(w.load(e.getKey(), p.dtype()));
            }
        }
    }

    /** Refuses a number that is not finite anywhere in {@code node}, naming the checkpoint and the field. */
    private static void requireFinite(Path dir, String field, JsonNode node) {
        if (node.isNumber() && !Double.isFinite(node.doubleValue())) {
            throw new CollieException(dir + ": " + field + " = " + node.asText() + " is not a finite number; a"
                    + " checkpoint keeps finite numbers only");
        }
        if (node.isArray()) {
            for (int i = 0; i < node.size(); i++) {
                requireFinite(dir, field + "[" + i + "]", node.get(i));
            }
        }
        node.fields().forEachRemaining(e -> requireFinite(dir, field + "." + e.getKey(), e.getValue()));
    }

    /** Settings the order of the rows, or how many a step takes, depend on: resume is exact only if they are kept. */
    private static final List<String> SAME_DATA = List.of("seed", "shuffle", "seq_len", "train_micro_batch_size",
            "gradient_accumulation_steps", "dp_size");
    /** Settings a resumed run may mean to change: a change is reported, not refused. */
    private static final List<String> MAY_CHANGE = List.of("lr", "lr_schedule", "warmup_steps", "clip_grad_norm");

    /**
     * Compares the config saved in checkpoint {@code dir} with {@code now}'s before resuming: refuses a changed
     * {@link #SAME_DATA} setting (the data would not continue where it stopped), naming the saved and the new value,
     * and returns one warning per changed learning-rate setting. A setting the checkpoint does not record (an older
     * checkpoint), or {@code seq_len} 0 (not set) on either side, is not compared.
     */
    public static List<String> compareConfig(Path dir, CollieConfig now) {
        JsonNode saved = manifest(dir).path("config");
        JsonNode current = JSON.valueToTree(now);
        Path manifest = dir.resolve(MANIFEST);
        List<String> warnings = new ArrayList<>();
        for (String f : SAME_DATA) {
            JsonNode a = saved.get(f);
            JsonNode b = current.get(f);
            if (a != null && !same(a, b) && !(f.equals("seq_len") && (a.asInt() == 0 || b.asInt() == 0))) {
                throw new CollieException(manifest + ": the checkpoint was trained with " + f + " = " + a.asText()
                        + ", this run has " + b.asText() + "; resuming exactly needs the same value (the data's order"
                        + " and the rows of each step depend on it)");
            }
        }
        for (String f : MAY_CHANGE) {
            JsonNode a = saved.get(f);
            JsonNode b = current.get(f);
            if (a != null && !same(a, b)) {
                warnings.add(manifest + ": resuming with " + f + " = " + b.asText() + "; the checkpoint was trained"
                        + " with " + a.asText());
            }
        }
        return warnings;
    }

    /** Equal values; numbers by value (the manifest reads 3 as an int, a long field writes it as a long). */
    private static boolean same(JsonNode a, JsonNode b) {
        return a.isNumber() && b != null && b.isNumber() ? a.decimalValue().compareTo(b.decimalValue()) == 0
                : a.equals(b);
    }

    /** The manifest of checkpoint {@code dir}, read; errors name it. */
    private static JsonNode manifest(Path dir) {
        Path manifest = dir.resolve(MANIFEST);
        if (!Files.isRegularFile(manifest)) {
            throw new CollieException(dir + ": not a training checkpoint (no " + MANIFEST + ")");
        }
        try {
            return JSON.readTree(manifest.toFile());
        } catch (IOException e) {
            throw new CollieException(manifest + ": cannot read: " + e.getMessage(), e);
        }
    }

    private static Map<String, INDArray> distinctParameters(Map<String, Parameter> params) {
        Map<String, INDArray> out = new TreeMap<>();
        distinctNamed(params).forEach((n, p) -> out.put(n, p.data()));
        return out;
    }

    /** Each parameter once, under its first name (a tied weight is stored once). */
    private static Map<String, Parameter> distinctNamed(Map<String, Parameter> params) {
        Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        Map<String, Parameter> out = new LinkedHashMap<>();
        params.forEach((n, p) -> {
            if (seen.add(p)) {
                out.put(n, p);
            }
        });
        return out;
    }
}
