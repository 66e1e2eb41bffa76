package dev.collie.core.io;

import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * Hugging Face checkpoint directories in safetensors form: {@code model.safetensors}, or
 * {@code model.safetensors.index.json} ({@code {"metadata": ..., "weight_map": {name: shard file}}}) with its
 * shards. Reading is lazy ({@link #open}); {@link #save} writes what {@code transformers} writes.
 */
public final class HfCheckpoint {

    /** The single-file weights name. */
    public static final String SINGLE_FILE = "model.safetensors";
    /** The index of a sharded checkpoint. */
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private static final Pattern SHARD_NAME = Pattern.compile("model-\\d{5}-of-\\d{5}\\.safetensors");

    private HfCheckpoint() {
    }

    /**
     * Opens the weights of {@code dir} (or a single {@code .safetensors} file): reads headers only.
     *
     * @throws CollieException if the directory has neither {@code model.safetensors} nor the index, or a file is bad
     */
    public static HfWeights open(Path dir) {
        return HfWeights.open(dir);
    }

    /** Dtype, shape and location of every tensor of the checkpoint in {@code dir}, sorted by name. */
    public static Map<String, TensorInfo> index(Path dir) {
        try (HfWeights w = open(dir)) {
            Map<String, TensorInfo> out = new TreeMap<>();
            for (String n : w.names()) {
                out.put(n, w.info(n));
            }
            return out;
        }
    }

    /**
     * Writes {@code tensors} to {@code dir/model.safetensors} (sorted by name, metadata {@code {"format": "pt"}}),
     * creating {@code dir} if needed and removing a sharded layout left there by an earlier save.
     */
    public static void save(Path dir, Map<String, ? extends INDArray> tensors) {
        save(dir, tensors, Long.MAX_VALUE);
    }

    /**
     * Like {@link #save(Path, Map)}, but splits into shards of at most {@code maxShardBytes} each (a tensor larger
     * than that gets a shard of its own) when the total exceeds it, named {@code model-0000k-of-0000n.safetensors}
     * with {@code model.safetensors.index.json}, as {@code transformers}' {@code save_pretrained} does.
     */
    public static void save(Path dir, Map<String, ? extends INDArray> tensors, long maxShardBytes) {
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException("maxShardBytes must be positive: " + maxShardBytes);
        }
        Map<String, INDArray> sorted = new TreeMap<>(tensors);
        Map<String, String> meta = Map.of("format", "pt");
        List<Map<String, INDArray>> shards = new ArrayList<>();
        Map<String, INDArray> cur = new LinkedHashMap<>();
        long curBytes = 0;
        long total = 0;
        long params = 0;
        for (Map.Entry<String, INDArray> e : sorted.entrySet()) {
            long b = bytesOf(dir, e.getKey(), e.getValue());
            if (!cur.isEmpty() && curBytes + b > maxShardBytes) {
                shards.add(cur);
                cur = new LinkedHashMap<>();
                curBytes = 0;
            }
            cur.put(e.getKey(), e.getValue());
            curBytes += b;
            total += b;
            params += e.getValue().length();
        }
        shards.add(cur);
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new CollieException(dir + ": cannot create the checkpoint directory: " + e, e);
        }
        Path index = dir.resolve(INDEX_FILE);
        if (shards.size() == 1) {
            SafeTensors.write(dir.resolve(SINGLE_FILE), shards.get(0), meta);
            removeStaleShards(dir, List.of());
            AtomicFiles.deleteQuietly(index);
            return;
        }
        int n = shards.size();
        List<String> names = new ArrayList<>();
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.putObject("metadata").put("total_parameters", params).put("total_size", total);
        ObjectNode wm = root.putObject("weight_map");
        for (int k = 0; k < n; k++) {
            String file = String.format("model-%05d-of-%05d.safetensors", k + 1, n);
            names.add(file);
            SafeTensors.write(dir.resolve(file), shards.get(k), meta);
            for (String t : shards.get(k).keySet()) {
                wm.put(t, file);
            }
        }
        // weight_map sorted by name, as transformers writes it (shards are filled in name order already)
        try {
            AtomicFiles.writeString(index, mapper.writer(pythonStyle()).writeValueAsString(root) + "\n");
        } catch (IOException e) {
            throw new CollieException(index + ": cannot write: " + e, e);
        }
        AtomicFiles.deleteQuietly(dir.resolve(SINGLE_FILE));
        removeStaleShards(dir, names);
    }

    /** Indented like Python's {@code json.dump(indent=2)}: {@code "key": value}, one array element per line. */
    static DefaultPrettyPrinter pythonStyle() {
        DefaultPrettyPrinter pp = new DefaultPrettyPrinter()
                .withSeparators(Separators.createDefaultInstance().withObjectFieldValueSpacing(Separators.Spacing.AFTER));
        pp.indentArraysWith(DefaultIndenter.SYSTEM_LINEFEED_INSTANCE);
        return pp;
    }

    private static long bytesOf(Path dir, String name, INDArray a) {
        if (a == null) {
            throw new CollieException(dir + ": tensor '" + name + "' is null");
        }
        SafeTensors.DType dt = SafeTensors.DType.fromNd4j(a.dataType());
        if (dt == null) {
            throw new CollieException(dir + ": tensor '" + name + "' has ND4J type " + a.dataType()
                    + ", which safetensors cannot store");
        }
        return a.length() * dt.byteSize();
    }

    /** Deletes {@code model-*-of-*.safetensors} files in {@code dir} that are not in {@code keep}. */
    private static void removeStaleShards(Path dir, List<String> keep) {
        try (var s = Files.list(dir)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                String f = p.getFileName().toString();
                if (SHARD_NAME.matcher(f).matches() && !keep.contains(f)) {
                    AtomicFiles.deleteQuietly(p);
                }
            }
        } catch (IOException ignored) {
            // stale shards are harmless once the index no longer names them
        }
    }
}
