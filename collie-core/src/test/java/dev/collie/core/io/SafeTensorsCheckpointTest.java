package dev.collie.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link HfCheckpoint} and {@link HfWeights}: the single-file and sharded Hugging Face layouts. */
class SafeTensorsCheckpointTest {

    @TempDir
    Path tmp;

    private static Map<String, INDArray> weights() {
        Nd4j.getRandom().setSeed(7);
        Map<String, INDArray> w = new TreeMap<>();
        w.put("model.embed_tokens.weight", Nd4j.rand(DataType.FLOAT, 16, 8));
        w.put("model.layers.0.self_attn.q_proj.weight", Nd4j.rand(DataType.FLOAT, 8, 8));
        w.put("model.layers.0.mlp.up_proj.weight", Nd4j.rand(DataType.FLOAT, 12, 8));
        w.put("model.layers.1.self_attn.q_proj.weight", Nd4j.rand(DataType.FLOAT, 8, 8));
        w.put("model.norm.weight", Nd4j.rand(DataType.FLOAT, 8).castTo(DataType.BFLOAT16));
        w.put("lm_head.weight", Nd4j.rand(DataType.FLOAT, 16, 8));
        return w;
    }

    @Test
    void savesSingleFileWithPtMetadata() {
        Map<String, INDArray> w = weights();
        Path dir = tmp.resolve("ckpt");
        HfCheckpoint.save(dir, w);
        assertTrue(Files.isRegularFile(dir.resolve("model.safetensors")));
        assertFalse(Files.exists(dir.resolve("model.safetensors.index.json")));
        Map<String, TensorInfo> index = HfCheckpoint.index(dir);
        assertEquals(List.copyOf(w.keySet()), List.copyOf(index.keySet()));
        assertArrayEquals(new long[] {12, 8}, index.get("model.layers.0.mlp.up_proj.weight").shape());
        assertEquals(SafeTensors.DType.BF16, index.get("model.norm.weight").dtype());
        try (HfWeights hw = HfCheckpoint.open(dir)) {
            assertEquals(Map.of("format", "pt"), hw.metadata());
            for (String n : w.keySet()) {
                assertEquals(w.get(n), hw.load(n, null), n);
            }
            assertEquals(dir.resolve("model.safetensors"), hw.fileOf("lm_head.weight"));
        }
        try (SafeTensors st = SafeTensors.open(dir.resolve("model.safetensors"))) {
            assertEquals(List.copyOf(w.keySet()), List.copyOf(st.names()), "sorted by name in the file");
        }
    }

    @Test
    void savesAndReadsShards() throws IOException {
        Map<String, INDArray> w = weights();
        Path dir = tmp.resolve("sharded");
        HfCheckpoint.save(dir, w, 600);
        assertFalse(Files.exists(dir.resolve("model.safetensors")));
        JsonNode idx = new ObjectMapper().readTree(dir.resolve("model.safetensors.index.json").toFile());
        long total = 0;
        for (INDArray a : w.values()) {
            total += a.length() * a.data().getElementSize();
        }
        assertEquals(total, idx.get("metadata").get("total_size").asLong());
        JsonNode wm = idx.get("weight_map");
        assertEquals(w.size(), wm.size());
        int shards = (int) Files.list(dir).filter(p -> p.getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors")).count();
        assertTrue(shards > 1, "several shards: " + shards);
        assertTrue(wm.get("lm_head.weight").asText().matches("model-00001-of-0000" + shards + "\\.safetensors"));
        String text = Files.readString(dir.resolve("model.safetensors.index.json"));
        assertTrue(text.contains("\"total_size\": " + total), text);

        try (HfWeights hw = HfCheckpoint.open(dir)) {
            assertEquals(List.copyOf(w.keySet()), List.copyOf(hw.names()));
            assertEquals(String.valueOf(total), hw.metadata().get("total_size"));
            for (String n : w.keySet()) {
                assertEquals(w.get(n), hw.load(n, null), n);
                assertEquals(dir.resolve(wm.get(n).asText()), hw.fileOf(n));
            }
            INDArray e = w.get("model.embed_tokens.weight");
            assertEquals(e.get(NDArrayIndex.interval(4, 8), NDArrayIndex.all()),
                    hw.loadSlice("model.embed_tokens.weight", DataType.FLOAT, 0, 4, 4));
            assertEquals(e.get(NDArrayIndex.all(), NDArrayIndex.interval(0, 4)),
                    hw.loadSlice("model.embed_tokens.weight", DataType.FLOAT, 1, 0, 4));
            assertEquals(w.get("model.norm.weight").castTo(DataType.FLOAT), hw.load("model.norm.weight", DataType.FLOAT));
            CollieException ex = assertThrows(CollieException.class, () -> hw.load("model.layers.9.x", DataType.FLOAT));
            assertTrue(ex.getMessage().contains("'model.layers.9.x'") && ex.getMessage().contains(dir.toString()),
                    ex.getMessage());
        }
        assertEquals(HfCheckpoint.index(dir).keySet(), w.keySet());

        // saving again as one file replaces the sharded layout
        HfCheckpoint.save(dir, w);
        try (var files = Files.list(dir)) {
            assertEquals(List.of("model.safetensors"), files.map(p -> p.getFileName().toString()).toList());
        }
    }

    @Test
    void opensASingleSafetensorsFile() {
        Path f = tmp.resolve("weights.safetensors");
        SafeTensors.write(f, Map.of("a", Nd4j.ones(DataType.FLOAT, 2)), null);
        try (HfWeights hw = HfCheckpoint.open(f)) {
            assertEquals(List.of("a"), List.copyOf(hw.names()));
            assertEquals(Nd4j.ones(DataType.FLOAT, 2), hw.load("a", DataType.FLOAT));
        }
    }

    @Test
    void clearErrorsForBadDirectories() throws IOException {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        CollieException e = assertThrows(CollieException.class, () -> HfCheckpoint.open(empty));
        assertTrue(e.getMessage().contains(empty.toString()) && e.getMessage().contains("model.safetensors")
                && e.getMessage().contains("model.safetensors.index.json"), e.getMessage());

        Path missing = tmp.resolve("missing");
        e = assertThrows(CollieException.class, () -> HfCheckpoint.index(missing));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());

        Path badIndex = Files.createDirectories(tmp.resolve("badindex"));
        Files.writeString(badIndex.resolve("model.safetensors.index.json"), "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\"}}");
        e = assertThrows(CollieException.class, () -> HfCheckpoint.open(badIndex));
        assertTrue(e.getMessage().contains("'a'") && e.getMessage().contains("model-00001-of-00002.safetensors")
                && e.getMessage().contains("does not exist"), e.getMessage());

        SafeTensors.write(badIndex.resolve("model-00001-of-00002.safetensors"), Map.of("b", Nd4j.ones(2)), null);
        e = assertThrows(CollieException.class, () -> HfCheckpoint.open(badIndex));
        assertTrue(e.getMessage().contains("'a'") && e.getMessage().contains("does not contain it"), e.getMessage());

        Files.writeString(badIndex.resolve("model.safetensors.index.json"), "{\"weight_map\": {\n  \"a\": }");
        e = assertThrows(CollieException.class, () -> HfCheckpoint.open(badIndex));
        assertTrue(e.getMessage().contains("model.safetensors.index.json") && e.getMessage().contains("line 2"),
                e.getMessage());
    }
}
