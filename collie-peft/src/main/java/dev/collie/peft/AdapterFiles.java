package dev.collie.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.io.AtomicFiles;
import dev.collie.core.io.ModelDirectory;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * peft's adapter directory: {@code adapter_config.json} and {@code adapter_model.safetensors} (float32, metadata
 * {@code {"format": "pt"}}). Keys: LoRA {@code base_model.model.<module>.lora_A.weight} / {@code .lora_B.weight};
 * prompt methods one tensor {@code prompt_embeddings}, the prompt encoder's output.
 */
final class AdapterFiles {
    static final String WEIGHTS = "adapter_model.safetensors";
    static final String LORA_PREFIX = "base_model.model.";
    static final String PROMPT_EMBEDDINGS = "prompt_embeddings";
    /** The prompt encoder's place in a {@link PeftModel}'s tree. */
    static final String PROMPT_ENCODER = "prompt_encoder.";

    private AdapterFiles() {
    }

    static Map<String, INDArray> tensors(PeftModel m) {
        Map<String, INDArray> out = new TreeMap<>();
        if (m.config().type() == PeftType.LORA) {
            m.loraModules().forEach((name, l) -> {
                if (l.isSplit()) {
                    throw new CollieException("the LoRA adapter is split over tensor-parallel ranks (" + name
                            + " holds a shard): gather the full weights (Parallelism.gatherFullWeights(), or"
                            + " TensorParallel.gatherFullWeights) and call saveAdapter(dir, fullWeights) on the lead rank");
                }
                out.put(LORA_PREFIX + name + ".lora_A.weight", f32(l.loraA().data()));
                out.put(LORA_PREFIX + name + ".lora_B.weight", f32(l.loraB().data()));
            });
        } else {
            out.put(PROMPT_EMBEDDINGS, f32(m.promptEncoder().output()));
        }
        return out;
    }

    /** The adapter's tensors, keyed as peft stores them, from full-shape weights by {@code m}'s parameter names. */
    static Map<String, INDArray> tensors(PeftModel m, Map<String, INDArray> full) {
        Map<String, INDArray> out = new TreeMap<>();
        if (m.config().type() == PeftType.LORA) {
            m.loraModules().forEach((name, l) -> {
                out.put(LORA_PREFIX + name + ".lora_A.weight", f32(fullTensor(full, name + ".lora_A.weight", l.fullShapeA())));
                out.put(LORA_PREFIX + name + ".lora_B.weight", f32(fullTensor(full, name + ".lora_B.weight", l.fullShapeB())));
            });
        } else {
            Map<String, INDArray> enc = new TreeMap<>();
            m.promptEncoder().namedParameters().forEach((n, p) ->
                    enc.put(n, fullTensor(full, PROMPT_ENCODER + n, p.shape())));
            out.put(PROMPT_EMBEDDINGS, f32(m.promptEncoder().outputWith(enc)));
        }
        return out;
    }

    private static INDArray fullTensor(Map<String, INDArray> full, String name, long[] shape) {
        INDArray t = full.get(name);
        if (t == null) {
            throw new CollieException("the weights given for the adapter have no " + name
                    + " (pass the full weights gathered on the lead rank)");
        }
        if (!Arrays.equals(t.shape(), shape)) {
            throw new CollieException(name + " has shape " + Arrays.toString(t.shape()) + " but the adapter's full"
                    + " shape is " + Arrays.toString(shape) + " (a tensor-parallel shard? gather it first)");
        }
        return t;
    }

    private static INDArray f32(INDArray a) {
        return a.castTo(DataType.FLOAT).dup('c');
    }

    static void save(PeftModel m, Path dir) {
        write(dir, m.config(), m.shape(), tensors(m));
    }

    /** Writes {@code adapter_config.json} for {@code config} and {@code shape}, and the tensors (peft's keys). */
    static void write(Path dir, PeftConfig config, BaseModelShape shape, Map<String, INDArray> tensors) {
        String json = AdapterJson.pythonStyle(config.toJson(shape));
        ModelDirectory.replace(dir, ModelDirectory.Content.ADAPTER, tmp -> {
            AtomicFiles.writeString(tmp.resolve(PeftConfig.FILE), json);
            SafeTensors.write(tmp.resolve(WEIGHTS), tensors, Map.of("format", "pt"));
        });
    }

    /** Checks that the model-derived fields of {@code dir}'s config (token_dim, layers, heads) fit {@code m}. */
    static void checkShape(PeftModel m, JsonNode stored, String where) {
        ObjectNode expect = m.config().toJson(m.shape());
        for (String f : new String[] {"token_dim", "num_layers", "num_attention_heads"}) {
            if (expect.has(f) && !AdapterJson.isNull(stored, f) && stored.get(f).asInt() != expect.get(f).asInt()) {
                throw new CollieException(where + ": " + f + " is " + stored.get(f).asInt() + " but the model needs "
                        + expect.get(f).asInt() + " (an adapter for another model?)");
            }
        }
    }

    static void loadWeights(PeftModel m, Path dir) {
        Path file = dir.resolve(WEIGHTS);
        if (!Files.isRegularFile(file)) {
            String hint = Files.isRegularFile(dir.resolve("adapter_model.bin"))
                    ? " (it has adapter_model.bin: convert it to safetensors, e.g. with peft's save_pretrained)" : "";
            throw new CollieException(dir + ": no " + WEIGHTS + hint);
        }
        try (SafeTensors st = SafeTensors.open(file)) {
            Set<String> unused = new HashSet<>(st.names());
            if (m.config().type() == PeftType.LORA) {
                m.loraModules().forEach((name, l) -> {
                    if (!l.loraA().isResident()) {
                        // another pipeline stage's layer: that stage loads it
                        unused.remove(LORA_PREFIX + name + ".lora_A.weight");
                        unused.remove(LORA_PREFIX + name + ".lora_B.weight");
                    } else if (l.isSplit()) {
                        // a tensor-parallel shard: read the full tensors, keep this rank's part
                        String ka = LORA_PREFIX + name + ".lora_A.weight";
                        String kb = LORA_PREFIX + name + ".lora_B.weight";
                        INDArray a = load(st, ka, l.fullShapeA(), l.loraA().dtype(), unused);
                        INDArray b = load(st, kb, l.fullShapeB(), l.loraB().dtype(), unused);
                        l.loadFull(a, b);
                    } else {
                        assign(st, LORA_PREFIX + name + ".lora_A.weight", l.loraA(), unused);
                        assign(st, LORA_PREFIX + name + ".lora_B.weight", l.loraB(), unused);
                    }
                });
            } else if (!m.promptEncoder().tableParameter().isResident()) {
                // prompt tuning / P-tuning: the encoder sits in the first pipeline stage's layer, that stage loads it
                unused.remove(PROMPT_EMBEDDINGS);
            } else {
                assign(st, PROMPT_EMBEDDINGS, m.promptEncoder().tableParameter(), unused);
            }
            if (!unused.isEmpty()) {
                throw new CollieException(file + ": tensors the adapter does not have: "
                        + unused.stream().sorted().toList());
            }
        }
    }

    private static void assign(SafeTensors st, String key, Parameter p, Set<String> unused) {
        p.data().assign(load(st, key, p.shape(), p.dtype(), unused));
    }

    private static INDArray load(SafeTensors st, String key, long[] expect, DataType dtype, Set<String> unused) {
        if (!st.contains(key)) {
            throw new CollieException(st.path() + ": tensor " + key + " is missing");
        }
        long[] shape = st.info(key).shape();
        if (!Arrays.equals(shape, expect)) {
            throw new CollieException(st.path() + ": tensor " + key + " has shape " + Arrays.toString(shape)
                    + " but the adapter needs " + Arrays.toString(expect));
        }
        unused.remove(key);
        return st.loadWeight(key, dtype);
    }
}
