package dev.collie.models.decoder;

import dev.collie.core.CollieException;
import dev.collie.core.io.HfCheckpoint;
import dev.collie.core.io.ModelDirectory;
import dev.collie.core.io.HfWeights;
import dev.collie.core.nn.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * Hugging Face directories of the decoder families ({@link ModelFamily}): {@code config.json} plus
 * {@code model.safetensors} (or the sharded layout on load). The module tree already uses the family's weight
 * names, so the mapping is the identity, except that a tied output head is not stored (as {@code save_pretrained}
 * does). Weights stored in bf16 or fp16 are widened exactly to the model's dtype; a save writes fp32.
 */
public final class DecoderCheckpoint {
    private static final Logger LOG = LoggerFactory.getLogger(DecoderCheckpoint.class);

    private DecoderCheckpoint() {
    }

    /**
     * Reads {@code dir/config.json} and the weights into a new model of {@code dtype}. The weights' headers are
     * checked against the config ({@link #checkWeights}) before the model is allocated.
     */
    public static DecoderForCausalLM load(Path dir, DataType dtype) {
        DecoderConfig config = DecoderConfig.load(dir.resolve("config.json"));
        try (HfWeights w = HfCheckpoint.open(dir)) {
            checkWeights(config, w);
            DecoderForCausalLM model = new DecoderForCausalLM(config, dtype);
            loadWeights(model, w);
            return model;
        }
    }

    /**
     * Checks from the headers alone, before anything is allocated, that {@code w} holds every weight of a model of
     * {@code config} with the shape the config implies and a floating-point dtype; errors name the tensor, both
     * shapes and the file.
     */
    public static void checkWeights(DecoderConfig config, HfWeights w) {
        config.forEachParameter((name, shape) -> {
            if (!w.contains(name)) {
                throw new CollieException(w.location() + ": tensor " + name + " is missing" + (name.equals(config.headWeight())
                        ? " (config.json says tie_word_embeddings is false)"
                        : name.startsWith(config.family().layout().layers() + ".")
                        ? " (config.json says num_hidden_layers is " + config.numHiddenLayers() + ")" : ""));
            }
            long[] stored = w.weightInfo(name).shape();
            if (!Arrays.equals(stored, shape)) {
                throw new CollieException(w.fileOf(name) + ": tensor " + name + " has shape "
                        + Arrays.toString(stored) + " but config.json implies " + Arrays.toString(shape));
            }
        });
    }

    /** Copies every parameter from {@code w}, after {@link #checkWeights} against the model's config. */
    public static void loadWeights(DecoderForCausalLM model, HfWeights w) {
        checkWeights(model.config(), w);
        for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
            String name = e.getKey();
            Parameter p = e.getValue();
            if (name.equals(model.config().headWeight()) && model.config().tieWordEmbeddings() && !w.contains(name)) {
                continue;
            }
            INDArray v = w.loadWeight(name, p.dtype());
            p.data().assign(v);
            v.close();
        }
        Map<String, INDArray> buffers = model.config().family().buffers(model.config());
        for (String name : w.names()) {
            if (!model.namedParameters().containsKey(name) && !buffers.containsKey(name)) {
                LOG.warn("{}: ignoring tensor {} that the model does not have", w.location(), name);
            }
        }
    }


    /**
     * Writes {@code config.json} and {@code model.safetensors} (fp32, names sorted) as the directory {@code dir},
     * replacing an older model there as a whole ({@link ModelDirectory#replace}).
     */
    public static void save(DecoderForCausalLM model, Path dir) {
        save(model, dir, Long.MAX_VALUE);
    }

    /** As {@link #save(DecoderForCausalLM, Path)}, in shards of at most {@code maxShardBytes} ({@link HfCheckpoint#save}). */
    public static void save(DecoderForCausalLM model, Path dir, long maxShardBytes) {
        Map<String, INDArray> weights = new TreeMap<>();
        model.namedParameters().forEach((name, p) -> weights.put(name, p.data()));
        save(model.config(), weights, dir, maxShardBytes);
    }

    /**
     * Writes {@code config} and full {@code weights} by Hugging Face name (e.g. gathered from the ranks of a
     * parallel run) as {@link #save(DecoderForCausalLM, Path)} does, checking every name and shape first.
     */
    public static void save(DecoderConfig config, Map<String, INDArray> weights, Path dir) {
        save(config, weights, dir, Long.MAX_VALUE);
    }

    /**
     * As {@link #save(DecoderConfig, Map, Path)}, in shards of at most {@code maxShardBytes} with
     * {@code model.safetensors.index.json} when the weights are larger ({@link HfCheckpoint#save}).
     */
    public static void save(DecoderConfig config, Map<String, INDArray> weights, Path dir, long maxShardBytes) {
        Map<String, INDArray> tensors = new TreeMap<>();
        weights.forEach((name, a) -> {
            if (!(name.equals(config.headWeight()) && config.tieWordEmbeddings())) {
                tensors.put(name, a.dataType() == DataType.FLOAT ? a : a.castTo(DataType.FLOAT));
            }
        });
        expectedShapes(config).forEach((name, shape) -> {
            if (name.equals(config.headWeight()) && config.tieWordEmbeddings()) {
                return;
            }
            INDArray a = tensors.get(name);
            if (a == null) {
                throw new CollieException("cannot save: tensor " + name + " is missing");
            }
            if (!Arrays.equals(a.shape(), shape)) {
                throw new CollieException("cannot save: tensor " + name + " has shape " + Arrays.toString(a.shape())
                        + " but config.json implies " + Arrays.toString(shape));
            }
        });
        tensors.putAll(config.family().buffers(config));
        DecoderConfig written = config.toBuilder().dtype("float32").build();     // what the file holds
        ModelDirectory.replace(dir, ModelDirectory.Content.MODEL, tmp -> {
            written.save(tmp);
            HfCheckpoint.save(tmp, tensors, maxShardBytes);
        });
    }

    /** The name and shape of every weight a model of {@code config} has, the output head included even when tied. */
    private static Map<String, long[]> expectedShapes(DecoderConfig config) {
        Map<String, long[]> out = new TreeMap<>();
        config.forEachParameter(out::put);
        out.put(config.headWeight(), new long[] {config.vocabSize(), config.hiddenSize()});
        return out;
    }
}
