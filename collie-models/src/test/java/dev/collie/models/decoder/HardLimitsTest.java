package dev.collie.models.decoder;

import dev.collie.core.CollieException;
import dev.collie.core.io.HfCheckpoint;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.Parameter;
import dev.collie.core.train.Memory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Sizes that cannot be allocated, and checkpoints that disagree with their config, are refused before allocating. */
class HardLimitsTest {

    @TempDir
    Path tmp;

    private static Path tiny() {
        try {
            return Paths.get(HardLimitsTest.class.getResource("/fixtures/tiny-llama").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A copy of the tiny-llama fixture whose config.json has {@code replacements} (pairs of old, new text) applied. */
    private Path tinyWithConfig(String... replacements) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("model"));
        String config = Files.readString(tiny().resolve("config.json"));
        for (int i = 0; i < replacements.length; i += 2) {
            assertTrue(config.contains(replacements[i]), replacements[i]);
            config = config.replace(replacements[i], replacements[i + 1]);
        }
        Files.writeString(dir.resolve("config.json"), config);
        Files.copy(tiny().resolve("model.safetensors"), dir.resolve("model.safetensors"));
        return dir;
    }

    private static String message(Runnable r) {
        return assertThrows(CollieException.class, r::run).getMessage();
    }

    @Test
    void hugeVocabularyIsRefusedByTheConfigNamingTheTensor() throws IOException {
        Path dir = tinyWithConfig("\"vocab_size\": 96", "\"vocab_size\": 2147483647");
        long t0 = System.nanoTime();
        String m = message(() -> DecoderCheckpoint.load(dir, DataType.FLOAT));
        assertTrue((System.nanoTime() - t0) / 1e9 < 1, "took " + (System.nanoTime() - t0) / 1e9 + " s");
        assertTrue(m.startsWith(dir.resolve("config.json") + ": model.embed_tokens.weight would have vocab_size ×"
                + " hidden_size = 2147483647 × 32 = 68,719,476,704 elements, more than one array may hold"), m);
        // every weight, not the embedding alone
        assertTrue(message(() -> DecoderConfig.builder().vocabSize(10).hiddenSize(4096).intermediateSize(1 << 20)
                .numHiddenLayers(1).numAttentionHeads(32).build()).contains("mlp.gate_proj.weight"));
    }

    @Test
    void aParameterCountBeyondALongIsRefused() {
        String m = message(() -> DecoderConfig.builder().vocabSize(10).hiddenSize(46340).intermediateSize(46340)
                .numHiddenLayers(Integer.MAX_VALUE).numAttentionHeads(1).build());
        assertTrue(m.contains("num_hidden_layers (2147483647)"), m);
    }

    @Test
    void aModelLargerThanTheMachineIsRefusedBeforeAllocating() {
        // 2^31 - 1 layers of 10,816 parameters: 93 TB of float32, more than any machine this runs on
        DecoderConfig c = DecoderConfig.builder().vocabSize(96).hiddenSize(32).intermediateSize(80).headDim(8)
                .numHiddenLayers(Integer.MAX_VALUE).numAttentionHeads(4).numKeyValueHeads(2).build();
        long t0 = System.nanoTime();
        String m = message(() -> new DecoderForCausalLM(c, DataType.FLOAT));
        assertTrue((System.nanoTime() - t0) / 1e9 < 1);
        assertTrue(m.startsWith("the model needs " + Memory.format(c.parameterCount() * 4) + " of parameters ("
                + String.format("%,d", c.parameterCount()) + " × FLOAT); "), m);
        assertTrue(m.endsWith(Memory.limit().source()), m);
    }

    @Test
    void parameterCountAndShapesAgreeWithTheBuiltModel() {
        DecoderConfig.Builder base = DecoderConfig.builder().vocabSize(50).hiddenSize(16).intermediateSize(24)
                .numHiddenLayers(2).numAttentionHeads(4).numKeyValueHeads(2);
        for (DecoderConfig c : new DecoderConfig[] {base.build(), base.tieWordEmbeddings(true).build(),
            base.tieWordEmbeddings(false).attentionBias(true).mlpBias(true).build()}) {
            DecoderForCausalLM model = new DecoderForCausalLM(c, DataType.FLOAT);
            assertEquals(model.parameterCount(), c.parameterCount(), c.toString());
            Map<String, long[]> expected = new TreeMap<>();
            c.forEachParameter(expected::put);
            Map<String, Parameter> actual = new TreeMap<>(model.namedParameters());
            if (c.tieWordEmbeddings()) {
                actual.remove("lm_head.weight");
            }
            assertEquals(expected.keySet(), actual.keySet());
            expected.forEach((n, s) -> assertArrayEquals(s, actual.get(n).shape(), n));
        }
    }

    @Test
    void configThatDisagreesWithTheWeightsIsRefusedFromTheHeadersAtOnce() throws IOException {
        // vocab 50M and 100,000 layers would be 17 GB of parameters: the headers say no before any is allocated
        Path dir = tinyWithConfig("\"vocab_size\": 96", "\"vocab_size\": 50000000",
                "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 100000");
        long t0 = System.nanoTime();
        String m = message(() -> DecoderCheckpoint.load(dir, DataType.FLOAT));
        double sec = (System.nanoTime() - t0) / 1e9;
        assertTrue(sec < 1, "took " + sec + " s");
        assertEquals(dir.resolve("model.safetensors") + ": tensor model.embed_tokens.weight has shape [96, 32] but"
                + " config.json implies [50000000, 32]", m);

        Path more = tmp.resolve("more");
        Files.createDirectories(more);
        Files.writeString(more.resolve("config.json"), Files.readString(dir.resolve("config.json"))
                .replace("50000000", "96"));
        Files.copy(dir.resolve("model.safetensors"), more.resolve("model.safetensors"));
        assertEquals(more + ": tensor model.layers.2.self_attn.q_proj.weight is missing (config.json says"
                + " num_hidden_layers is 100000)", message(() -> DecoderCheckpoint.load(more, DataType.FLOAT)));
    }

    @Test
    void integerWeightsAreRefusedNamingTensorDtypeAndFile() throws IOException {
        Path dir = tinyWithConfig();
        Path file = dir.resolve("model.safetensors");
        Map<String, INDArray> tensors = new TreeMap<>();
        try (SafeTensors st = SafeTensors.open(tiny().resolve("model.safetensors"))) {
            for (String n : st.names()) {
                tensors.put(n, st.load(n));
            }
        }
        tensors.put("model.layers.1.mlp.up_proj.weight", tensors.get("model.layers.1.mlp.up_proj.weight")
                .castTo(DataType.INT));
        SafeTensors.write(file, tensors, Map.of("format", "pt"));
        String m = message(() -> DecoderCheckpoint.load(dir, DataType.FLOAT));
        assertTrue(m.startsWith(file + ": tensor 'model.layers.1.mlp.up_proj.weight': dtype I32 is not floating point"),
                m);
        // the same from the loader a tensor-parallel rank uses
        try (var w = HfCheckpoint.open(dir)) {
            assertEquals(m, message(() -> w.loadWeight("model.layers.1.mlp.up_proj.weight", DataType.FLOAT)));
            assertEquals(Arrays.toString(new long[] {80, 32}),
                    Arrays.toString(w.info("model.layers.1.mlp.up_proj.weight").shape()));
        }
    }
}
