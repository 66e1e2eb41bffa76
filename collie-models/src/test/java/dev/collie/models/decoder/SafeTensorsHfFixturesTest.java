package dev.collie.models.decoder;

import dev.collie.core.io.HfCheckpoint;
import dev.collie.core.io.HfWeights;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.io.TensorInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Reads the checkpoints transformers wrote (fixtures/tiny-llama*, see tools/reference/make_llama_fixtures.py). */
class SafeTensorsHfFixturesTest {

    @TempDir
    Path tmp;

    private static Path fixture(String rel) {
        try {
            return Paths.get(SafeTensorsHfFixturesTest.class.getResource("/fixtures/" + rel).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void singleAndShardedCheckpointsAgree() {
        Map<String, TensorInfo> single = HfCheckpoint.index(fixture("tiny-llama"));
        Map<String, TensorInfo> sharded = HfCheckpoint.index(fixture("tiny-llama-sharded"));
        assertEquals(single.keySet(), sharded.keySet());
        assertEquals(21, single.size());
        try (HfWeights a = HfCheckpoint.open(fixture("tiny-llama"));
             HfWeights b = HfCheckpoint.open(fixture("tiny-llama-sharded"))) {
            assertEquals("pt", a.metadata().get("format"));
            assertEquals("111232", b.metadata().get("total_size"));
            for (String n : a.names()) {
                assertEquals(SafeTensors.DType.F32, a.info(n).dtype(), n);
                assertArrayEquals(a.info(n).shape(), b.info(n).shape(), n);
                assertEquals(a.load(n, DataType.FLOAT), b.load(n, DataType.FLOAT), n);
            }
        }
    }

    @Test
    void shapesMatchTheConfig() {
        DecoderConfig c = DecoderConfig.load(fixture("tiny-llama"));
        Map<String, TensorInfo> idx = HfCheckpoint.index(fixture("tiny-llama"));
        int qDim = c.numAttentionHeads() * c.headDim();
        int kvDim = c.numKeyValueHeads() * c.headDim();
        assertArrayEquals(new long[] {c.vocabSize(), c.hiddenSize()}, idx.get("model.embed_tokens.weight").shape());
        assertArrayEquals(new long[] {c.vocabSize(), c.hiddenSize()}, idx.get("lm_head.weight").shape());
        assertArrayEquals(new long[] {qDim, c.hiddenSize()}, idx.get("model.layers.0.self_attn.q_proj.weight").shape());
        assertArrayEquals(new long[] {kvDim, c.hiddenSize()}, idx.get("model.layers.1.self_attn.k_proj.weight").shape());
        assertArrayEquals(new long[] {c.hiddenSize(), qDim}, idx.get("model.layers.0.self_attn.o_proj.weight").shape());
        assertArrayEquals(new long[] {c.intermediateSize(), c.hiddenSize()},
                idx.get("model.layers.0.mlp.gate_proj.weight").shape());
        assertArrayEquals(new long[] {c.hiddenSize()}, idx.get("model.norm.weight").shape());
    }

    @Test
    void tensorParallelShardsOfARealCheckpoint() {
        try (HfWeights w = HfCheckpoint.open(fixture("tiny-llama-sharded"))) {
            String q = "model.layers.0.self_attn.q_proj.weight";
            String o = "model.layers.0.self_attn.o_proj.weight";
            INDArray qFull = w.load(q, DataType.FLOAT);
            INDArray oFull = w.load(o, DataType.FLOAT);
            long rows = qFull.size(0);
            long cols = oFull.size(1);
            // column-parallel q_proj splits output rows (dim 0); row-parallel o_proj splits input columns (dim 1)
            for (int rank = 0; rank < 2; rank++) {
                INDArray qs = w.loadSlice(q, DataType.FLOAT, 0, rank * rows / 2, rows / 2);
                INDArray os = w.loadSlice(o, DataType.FLOAT, 1, rank * cols / 2, cols / 2);
                assertEquals(qFull.get(NDArrayIndex.interval(rank * rows / 2, (rank + 1) * rows / 2),
                        NDArrayIndex.all()), qs);
                assertEquals(oFull.get(NDArrayIndex.all(),
                        NDArrayIndex.interval(rank * cols / 2, (rank + 1) * cols / 2)), os);
            }
        }
    }

    @Test
    void resavedCheckpointReadsBackIdentically() {
        Map<String, INDArray> all = new TreeMap<>();
        try (HfWeights w = HfCheckpoint.open(fixture("tiny-llama"))) {
            for (String n : w.names()) {
                all.put(n, w.load(n, null));
            }
        }
        Path out = tmp.resolve("resaved");
        HfCheckpoint.save(out, all, 40_000);
        try (HfWeights w = HfCheckpoint.open(out)) {
            assertEquals(all.keySet(), w.names());
            for (String n : all.keySet()) {
                assertEquals(all.get(n), w.load(n, null), n);
            }
        }
    }
}
