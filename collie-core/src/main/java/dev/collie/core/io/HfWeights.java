package dev.collie.core.io;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.CollieException;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The weights of a Hugging Face checkpoint directory, opened lazily: either one {@code model.safetensors} or the
 * sharded layout {@code model.safetensors.index.json} + {@code model-0000k-of-0000n.safetensors}. Only headers
 * are read on open; {@link #load} reads one tensor. Safe to share between threads. Open with
 * {@link HfCheckpoint#open(Path)}.
 */
public final class HfWeights implements AutoCloseable {

    private final Path location;
    private final List<SafeTensors> files;
    private final Map<String, SafeTensors> fileOf;
    private final Map<String, String> metadata;

    private HfWeights(Path location, List<SafeTensors> files, Map<String, SafeTensors> fileOf,
                      Map<String, String> metadata) {
        this.location = location;
        this.files = files;
        this.fileOf = fileOf;
        this.metadata = metadata;
    }

    /** Opens a checkpoint directory, or a single {@code .safetensors} file. */
    static HfWeights open(Path dirOrFile) {
        if (Files.isRegularFile(dirOrFile)) {
            return single(dirOrFile, dirOrFile);
        }
        if (!Files.isDirectory(dirOrFile)) {
            throw new CollieException(dirOrFile + ": no such checkpoint directory");
        }
        Path single = dirOrFile.resolve(HfCheckpoint.SINGLE_FILE);
        Path index = dirOrFile.resolve(HfCheckpoint.INDEX_FILE);
        if (Files.isRegularFile(single)) {
            return single(dirOrFile, single);
        }
        if (Files.isRegularFile(index)) {
            return sharded(dirOrFile, index);
        }
        throw new CollieException(dirOrFile + ": neither " + HfCheckpoint.SINGLE_FILE + " nor "
                + HfCheckpoint.INDEX_FILE + " is there; not a safetensors checkpoint directory"
                + (Files.isRegularFile(dirOrFile.resolve("pytorch_model.bin"))
                ? " (pytorch_model.bin is not supported: convert it to safetensors)" : ""));
    }

    private static HfWeights single(Path location, Path file) {
        SafeTensors st = SafeTensors.open(file);
        Map<String, SafeTensors> map = new TreeMap<>();
        for (String n : st.names()) {
            map.put(n, st);
        }
        return new HfWeights(location, List.of(st), Collections.unmodifiableMap(map), st.metadata());
    }

    private static HfWeights sharded(Path dir, Path index) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readAllBytes(index));
        } catch (JsonProcessingException e) {
            JsonLocation loc = e.getLocation();
            String where = loc == null ? "" : " at line " + loc.getLineNr() + ", column " + loc.getColumnNr();
            throw new CollieException(index + ": malformed JSON" + where + ": " + e.getOriginalMessage(), e);
        } catch (NoSuchFileException e) {
            throw new CollieException(index + ": no such file", e);
        } catch (IOException e) {
            throw new CollieException(index + ": cannot read: " + e, e);
        }
        if (root == null || !root.isObject()) {
            throw new CollieException(index + ": not a JSON object");
        }
        JsonNode wm = root.get("weight_map");
        if (wm == null || !wm.isObject()) {
            throw new CollieException(index + ": missing \"weight_map\" object");
        }
        Map<String, String> meta = new LinkedHashMap<>();
        JsonNode m = root.get("metadata");
        if (m != null && m.isObject()) {
            for (Iterator<Map.Entry<String, JsonNode>> it = m.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                meta.put(e.getKey(), e.getValue().isTextual() ? e.getValue().asText() : e.getValue().toString());
            }
        }
        Map<String, SafeTensors> shards = new LinkedHashMap<>();
        Map<String, SafeTensors> map = new TreeMap<>();
        try {
            for (Iterator<Map.Entry<String, JsonNode>> it = wm.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String name = e.getKey();
                if (!e.getValue().isTextual()) {
                    throw new CollieException(index + ": weight_map entry '" + name + "' is not a file name");
                }
                String shardName = e.getValue().asText();
                Path shard = dir.resolve(shardName).normalize();
                if (!shard.startsWith(dir.normalize())) {
                    throw new CollieException(index + ": weight_map entry '" + name + "' points outside the directory: "
                            + shardName);
                }
                SafeTensors st = shards.get(shardName);
                if (st == null) {
                    if (!Files.isRegularFile(shard)) {
                        throw new CollieException(index + ": tensor '" + name + "' is mapped to " + shardName
                                + ", which does not exist in " + dir);
                    }
                    st = SafeTensors.open(shard);
                    shards.put(shardName, st);
                }
                if (!st.contains(name)) {
                    throw new CollieException(index + ": tensor '" + name + "' is mapped to " + shardName
                            + ", which does not contain it");
                }
                map.put(name, st);
            }
        } catch (RuntimeException e) {
            shards.values().forEach(SafeTensors::close);
            throw e;
        }
        return new HfWeights(dir, List.copyOf(shards.values()), Collections.unmodifiableMap(map),
                Collections.unmodifiableMap(meta));
    }

    /** The directory (or file) this was opened on. */
    public Path location() {
        return location;
    }

    /** Names of all tensors, sorted. */
    public Set<String> names() {
        return fileOf.keySet();
    }

    /** True if the checkpoint holds tensor {@code name}. */
    public boolean contains(String name) {
        return fileOf.containsKey(name);
    }

    /**
     * Dtype and shape of tensor {@code name}.
     *
     * @throws CollieException if there is no such tensor
     */
    public TensorInfo info(String name) {
        return reader(name).info(name);
    }

    /** {@link SafeTensors#weightInfo}: the header of a tensor that is to become a weight, refused unless floating point. */
    public TensorInfo weightInfo(String name) {
        return reader(name).weightInfo(name);
    }

    /** {@link SafeTensors#loadWeight}: loads a weight, refusing a tensor that is not floating point. */
    public INDArray loadWeight(String name, DataType target) {
        return reader(name).loadWeight(name, target);
    }

    /** The safetensors file that holds tensor {@code name}. */
    public Path fileOf(String name) {
        return reader(name).path();
    }

    /** The single file's {@code __metadata__}, or the index's {@code metadata} for a sharded checkpoint. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Loads tensor {@code name} converted to {@code target} (null: its own type); see {@link SafeTensors#load(String, DataType)}. */
    public INDArray load(String name, DataType target) {
        return reader(name).load(name, target);
    }

    /** Loads a slice of tensor {@code name}; see {@link SafeTensors#loadSlice}. */
    public INDArray loadSlice(String name, DataType target, int dim, long start, long length) {
        return reader(name).loadSlice(name, target, dim, start, length);
    }

    @Override
    public void close() {
        for (SafeTensors f : files) {
            f.close();
        }
    }

    private SafeTensors reader(String name) {
        SafeTensors st = fileOf.get(name);
        if (st == null) {
            throw new CollieException(location + ": no tensor named '" + name + "' in the checkpoint ("
                    + fileOf.size() + " tensors" + SafeTensors.sample(fileOf.keySet()) + ")");
        }
        return st;
    }
}
