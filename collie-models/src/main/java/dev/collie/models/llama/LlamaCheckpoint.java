package dev.collie.models.llama;

import dev.collie.core.CollieException;
import dev.collie.core.io.HfCheckpoint;
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
 * Hugging Face directories for LLaMA: {@code config.json} plus {@code model.safetensors} (or the sharded
 * layout on load). The module tree already uses Hugging Face's weight names, so the mapping is the
 * identity, except that a tied output head is not stored (as {@code save_pretrained} does).
 */
public final class LlamaCheckpoint {
    private static final Logger LOG = LoggerFactory.getLogger(LlamaCheckpoint.class);
    private static final String TIED_HEAD = "lm_head.weight";

    private LlamaCheckpoint() {
    }

    /** Reads {@code dir/config.json} and the weights into a new model of {@code dtype}. */
    public static LlamaForCausalLM load(Path dir, DataType dtype) {
        LlamaConfig config = LlamaConfig.load(dir.resolve("config.json"));
        LlamaForCausalLM model = new LlamaForCausalLM(config, dtype);
        try (HfWeights w = HfCheckpoint.open(dir)) {
            loadWeights(model, w);
        }
        return model;
    }

    /** Copies every parameter from {@code w}, checking shapes against the config. */
    public static void loadWeights(LlamaForCausalLM model, HfWeights w) {
        for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
            String name = e.getKey();
            Parameter p = e.getValue();
            if (!w.contains(name)) {
                if (name.equals(TIED_HEAD) && model.config().tieWordEmbeddings()) {
                    continue;
                }
                throw new CollieException(w.location() + ": tensor " + name + " is missing"
                        + (name.equals(TIED_HEAD) ? " (config.json says tie_word_embeddings is false)" : ""));
            }
            long[] stored = w.info(name).shape();
            if (!Arrays.equals(stored, p.shape())) {
                throw new CollieException(w.fileOf(name) + ": tensor " + name + " has shape "
                        + Arrays.toString(stored) + " but config.json implies " + Arrays.toString(p.shape()));
            }
            INDArray v = w.load(name, p.dtype());
            p.data().assign(v);
            v.close();
        }
        for (String name : w.names()) {
            if (!model.namedParameters().containsKey(name)) {
                LOG.warn("{}: ignoring tensor {} that the model does not have", w.location(), name);
            }
        }
    }


    /** Writes {@code config.json} and {@code model.safetensors} (fp32, names sorted) into {@code dir}. */
    public static void save(LlamaForCausalLM model, Path dir) {
        Map<String, INDArray> tensors = new TreeMap<>();
        model.namedParameters().forEach((name, p) -> {
            if (!(name.equals(TIED_HEAD) && model.config().tieWordEmbeddings())) {
                tensors.put(name, p.data().dataType() == DataType.FLOAT ? p.data() : p.data().castTo(DataType.FLOAT));
            }
        });
        model.config().save(dir);
        HfCheckpoint.save(dir, tensors);
    }
}
