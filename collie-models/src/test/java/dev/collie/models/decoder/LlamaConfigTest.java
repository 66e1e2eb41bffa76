package dev.collie.models.decoder;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.nn.RopeScaling;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.CollieException;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.tensor.MatmulProbe;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LlamaConfigTest {

    @TempDir
    Path tmp;

    private static Path fixture(String rel) {
        try {
            return Paths.get(LlamaConfigTest.class.getResource("/fixtures/" + rel).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static DecoderConfig.Builder small() {
        return DecoderConfig.builder().vocabSize(100).hiddenSize(64).intermediateSize(128).numHiddenLayers(2)
                .numAttentionHeads(4);
    }

    private static String message(Runnable r) {
        return assertThrows(CollieException.class, r::run).getMessage();
    }

    private static void assertClose(double[] want, double[] got, double rel, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], Math.abs(want[i]) * rel, what + "[" + i + "]");
        }
    }

    /** What {@code --matmul-precision auto} times: a block's three largest distinct linear shapes and the head. */
    @Test
    void matmulShapesAreTheLargestLinearsAndTheHead() {
        // TinyLlama's shape: q/o [2048, 2048], k/v [256, 2048], gate/up [5632, 2048], down [2048, 5632]
        DecoderConfig c = DecoderConfig.builder().vocabSize(32000).hiddenSize(2048).intermediateSize(5632)
                .numHiddenLayers(22).numAttentionHeads(32).numKeyValueHeads(4).build();
        assertEquals(List.of(new MatmulProbe.Shape(512, 2048, 5632), new MatmulProbe.Shape(512, 5632, 2048),
                new MatmulProbe.Shape(512, 2048, 2048), new MatmulProbe.Shape(512, 2048, 32000)), c.matmulShapes(512));
        // tied or not, the head is the same product
        assertEquals(c.matmulShapes(8), c.toBuilder().tieWordEmbeddings(true).build().matmulShapes(8));
    }

    // ------------------------------------------------------------------------------------------ layouts

    @Test
    void readsTransformers4Layout() {
        DecoderConfig c = DecoderConfig.load(fixture("config-layouts/config-v4.json"));
        assertEquals(128256, c.vocabSize());
        assertEquals(2048, c.hiddenSize());
        assertEquals(8192, c.intermediateSize());
        assertEquals(16, c.numHiddenLayers());
        assertEquals(32, c.numAttentionHeads());
        assertEquals(8, c.numKeyValueHeads());
        assertEquals(4, c.numKeyValueGroups());
        assertEquals(64, c.headDim());
        assertEquals(1e-5, c.rmsNormEps());
        assertEquals(131072, c.maxPositionEmbeddings());
        assertTrue(c.tieWordEmbeddings());
        assertFalse(c.qkvBias() || c.outputBias());
        assertFalse(c.mlpBias());
        assertEquals(128000, c.bosTokenId().getAsInt());
        assertEquals(128001, c.eosTokenId().getAsInt());
        assertTrue(c.padTokenId().isEmpty());
        assertEquals("bfloat16", c.dtype().orElseThrow());
        assertEquals(RopeScaling.llama3(500000.0, 8.0, 1.0, 4.0, 8192), c.rope());
        assertEquals(500000.0, c.ropeTheta());
    }

    @Test
    void readsTransformers5LayoutAsTheSameModel() {
        DecoderConfig v4 = DecoderConfig.load(fixture("config-layouts/config-v4.json"));
        DecoderConfig v5 = DecoderConfig.load(fixture("config-layouts/config-v5.json"));
        assertEquals(RopeScaling.llama3(500000.0, 8.0, 1.0, 4.0, 8192), v5.rope());
        assertEquals("bfloat16", v5.dtype().orElseThrow());
        assertEquals(v4, v5);
    }

    @Test
    void readsTinyLlamaConfigAndDirectory() {
        DecoderConfig c = DecoderConfig.load(fixture("tiny-llama"));
        assertEquals(96, c.vocabSize());
        assertEquals(8, c.headDim());
        assertEquals(2, c.numKeyValueHeads());
        assertEquals(RopeScaling.standard(50000.0), c.rope());
        assertEquals(64, c.maxPositionEmbeddings());
        assertEquals("float32", c.dtype().orElseThrow());
    }

    @Test
    void legacyRopeScalingSpellings() {
        String v4linear = "{\"vocab_size\": 100, \"hidden_size\": 64, \"intermediate_size\": 128,"
                + " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"rope_theta\": 20000.0,"
                + " \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}";
        DecoderConfig c = DecoderConfig.fromJson(v4linear, "old.json");
        assertEquals(RopeScaling.linear(20000.0, 2.0), c.rope());
        // llama3 without original_max_position_embeddings: transformers falls back to max_position_embeddings
        String v5 = "{\"vocab_size\": 100, \"hidden_size\": 64, \"intermediate_size\": 128,"
                + " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"max_position_embeddings\": 4096,"
                + " \"rope_parameters\": {\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1,"
                + " \"high_freq_factor\": 4}, \"rope_theta\": 500000}";
        DecoderConfig d = DecoderConfig.fromJson(v5, "new.json");
        assertEquals(RopeScaling.llama3(500000.0, 8.0, 1.0, 4.0, 4096), d.rope());
        // eos as a list, ids of -1 meaning "none", head_dim null
        String lists = "{\"vocab_size\": 200, \"hidden_size\": 64, \"intermediate_size\": 128,"
                + " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"eos_token_id\": [101, 108, 109],"
                + " \"pad_token_id\": -1, \"head_dim\": null, \"rope_scaling\": null, \"model_type\": \"llama\"}";
        DecoderConfig e = DecoderConfig.fromJson(lists, "lists.json");
        assertEquals(List.of(101, 108, 109), e.eosTokenIds());
        assertEquals(101, e.eosTokenId().getAsInt());
        assertTrue(e.padTokenId().isEmpty());
        assertEquals(16, e.headDim());
        assertEquals(RopeScaling.standard(10000.0), e.rope());
    }

    @Test
    void defaults() {
        DecoderConfig c = small().build();
        assertEquals(4, c.numKeyValueHeads());
        assertEquals(16, c.headDim());
        assertEquals(1e-6, c.rmsNormEps());
        assertEquals(10000.0, c.ropeTheta());
        assertEquals("default", c.rope().type());
        assertEquals(2048, c.maxPositionEmbeddings());
        assertFalse(c.tieWordEmbeddings());
        assertFalse(c.qkvBias() || c.outputBias());
        assertFalse(c.mlpBias());
        assertEquals(0.02, c.initializerRange());
        assertEquals("silu", c.hiddenAct());
        assertTrue(c.bosTokenId().isEmpty());
        assertTrue(c.eosTokenId().isEmpty());
        assertTrue(c.dtype().isEmpty());
        DecoderConfig same = DecoderConfig.fromJson("{\"vocab_size\": 100, \"hidden_size\": 64, \"intermediate_size\": 128,"
                + " \"num_hidden_layers\": 2, \"num_attention_heads\": 4}", "minimal.json");
        assertEquals(c, same);
    }

    @Test
    void explicitHeadDimNeedNotDivideHidden() {
        DecoderConfig c = small().hiddenSize(90).headDim(32).numKeyValueHeads(2).build();
        assertEquals(32, c.headDim());
        String m = message(() -> small().hiddenSize(90).build());
        assertTrue(m.contains("hidden_size (90) must be divisible by num_attention_heads (4)"), m);
    }

    // ------------------------------------------------------------------------------------------- writing

    @Test
    void toJsonRoundTripsAndHasBothRopeLayouts() throws IOException {
        DecoderConfig c = DecoderConfig.load(fixture("config-layouts/config-v4.json"));
        String json = c.toJson();
        assertEquals(c, DecoderConfig.fromJson(json, "roundtrip"));
        JsonNode n = new ObjectMapper().readTree(json);
        assertEquals("LlamaForCausalLM", n.get("architectures").get(0).asText());
        assertEquals("llama", n.get("model_type").asText());
        assertEquals("llama3", n.get("rope_parameters").get("rope_type").asText());
        assertEquals(500000.0, n.get("rope_parameters").get("rope_theta").asDouble());
        assertEquals(8192, n.get("rope_parameters").get("original_max_position_embeddings").asInt());
        assertEquals(500000.0, n.get("rope_theta").asDouble());
        assertEquals("llama3", n.get("rope_scaling").get("rope_type").asText());
        assertFalse(n.get("rope_scaling").has("rope_theta"));
        assertEquals(64, n.get("head_dim").asInt());
        assertEquals("bfloat16", n.get("dtype").asText());
        assertEquals("bfloat16", n.get("torch_dtype").asText());
        assertTrue(json.contains("\"vocab_size\": 128256"), "Python-style separators");

        // the v4 reader path: drop rope_parameters, keep the top-level fields
        ((ObjectNode) n).remove("rope_parameters");
        assertEquals(c, DecoderConfig.fromJson(n.toString(), "as-v4"));

        DecoderConfig plain = small().eosTokenIds(1, 2).bosTokenId(0).build();
        JsonNode p = new ObjectMapper().readTree(plain.toJson());
        assertTrue(p.get("rope_scaling").isNull());
        assertEquals("default", p.get("rope_parameters").get("rope_type").asText());
        assertEquals(2, p.get("eos_token_id").size());
        assertEquals(plain, DecoderConfig.fromJson(plain.toJson(), "plain"));
    }

    @Test
    void savesConfigJson() {
        DecoderConfig c = small().numKeyValueHeads(2).rope(RopeScaling.linear(10000.0, 4.0)).dtype("float32").build();
        Path dir = tmp.resolve("out");
        c.save(dir);
        assertTrue(Files.isRegularFile(dir.resolve("config.json")));
        assertEquals(c, DecoderConfig.load(dir.resolve("config.json")));
        assertEquals(c, DecoderConfig.load(dir));
        assertEquals(c, c.toBuilder().build());
    }

    // ---------------------------------------------------------------------------------------------- rope

    @Test
    void ropeMatchesTransformersFixture() {
        try (SafeTensors st = SafeTensors.open(fixture("config-layouts/rope_inv_freq.safetensors"))) {
            DecoderConfig v4 = DecoderConfig.load(fixture("config-layouts/config-v4.json"));
            DecoderConfig v5 = DecoderConfig.load(fixture("config-layouts/config-v5.json"));
            double[] llama3 = st.load("llama3_theta500000_hd64.inv_freq", DataType.DOUBLE).data().asDouble();
            assertClose(llama3, v4.ropeInvFreq(), 1e-6, "llama3 (v4 layout)");
            assertClose(llama3, v5.ropeInvFreq(), 1e-6, "llama3 (v5 layout)");
            double[] plain = st.load("default_theta500000_hd64.inv_freq", DataType.DOUBLE).data().asDouble();
            assertClose(plain, v4.toBuilder().rope(RopeScaling.standard(500000.0)).build().ropeInvFreq(), 1e-6,
                    "default theta 500000");
            double[] tiny = st.load("default_theta50000_hd8.inv_freq", DataType.DOUBLE).data().asDouble();
            assertClose(tiny, DecoderConfig.load(fixture("tiny-llama/config.json")).ropeInvFreq(), 1e-6, "tiny");
            // llama3 really changes the low frequencies (else this test would prove little)
            assertTrue(llama3[31] < plain[31] / 7.9 && llama3[0] == plain[0]);
        }
    }

    @Test
    void ropeLinearAndDynamic() {
        // Expected values: transformers 5.18 LlamaRotaryEmbedding(...).inv_freq[[0, 1, 4, 7]] (float32), printed by
        // tools/reference/make_io_fixtures.py (rope_numbers) for hidden 64, 4 heads (head_dim 16), theta 10000,
        // max_position_embeddings 256.
        DecoderConfig linear = small().maxPositionEmbeddings(256).rope(RopeScaling.linear(10000.0, 4.0)).build();
        double[] l = linear.ropeInvFreq();
        assertClose(new double[] {0.25, 0.07905694097280502, 0.0024999999441206455, 7.905694656074047e-05},
                new double[] {l[0], l[1], l[4], l[7]}, 1e-6, "linear");
        DecoderConfig dynamic = small().maxPositionEmbeddings(256).rope(RopeScaling.dynamic(10000.0, 2.0)).build();
        double[] d = dynamic.ropeInvFreq();
        assertClose(new double[] {1.0, 0.3162277638912201, 0.009999999776482582, 0.0003162277862429619},
                new double[] {d[0], d[1], d[4], d[7]}, 1e-6, "dynamic at init");
        double[] d1024 = dynamic.ropeInvFreq(1024);
        assertClose(new double[] {1.0, 0.2394813746213913, 0.003289173822849989, 4.517539491644129e-05},
                new double[] {d1024[0], d1024[1], d1024[4], d1024[7]}, 1e-6, "dynamic at 1024");
        assertArrayEquals(d, dynamic.ropeInvFreq(100), "shorter than max_position_embeddings: unchanged");
        assertEquals(8, d.length);
    }

    // -------------------------------------------------------------------------------------------- errors

    private static String base(String extra) {
        return "{\"vocab_size\": 100, \"hidden_size\": 60, \"intermediate_size\": 128, \"num_hidden_layers\": 2"
                + extra + "}";
    }

    @Test
    void headsMustDivideByKvHeads() {
        String m = message(() -> DecoderConfig.fromJson(
                base(", \"num_attention_heads\": 12, \"num_key_value_heads\": 5"), "config.json"));
        assertEquals("config.json: num_attention_heads (12) must be divisible by num_key_value_heads (5)", m);
        m = message(() -> small().numKeyValueHeads(3).build());
        assertTrue(m.contains("num_attention_heads (4) must be divisible by num_key_value_heads (3)"), m);
    }

    @Test
    void unknownRopeTypeNamesFieldAndFile(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("config.json");
        Files.writeString(f, base(", \"num_attention_heads\": 6, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}"));
        String m = message(() -> DecoderConfig.load(f));
        assertTrue(m.startsWith(f + ": rope_scaling.rope_type \"yarn\" is not supported"), m);
        m = message(() -> DecoderConfig.fromJson(base(", \"num_attention_heads\": 6, \"rope_parameters\": "
                + "{\"rope_type\": \"longrope\", \"rope_theta\": 10000}"), "v5.json"));
        assertTrue(m.startsWith("v5.json: rope_parameters.rope_type \"longrope\""), m);
        m = message(() -> DecoderConfig.fromJson(base(", \"num_attention_heads\": 6, \"rope_parameters\": "
                + "{\"rope_type\": \"linear\"}"), "v5.json"));
        assertTrue(m.contains("rope_parameters.factor"), m);
        m = message(() -> DecoderConfig.fromJson(base(", \"num_attention_heads\": 6, \"rope_scaling\": "
                + "{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4, \"high_freq_factor\": 1}"), "x.json"));
        assertTrue(m.contains("rope_scaling.high_freq_factor (1.0) must be greater than low_freq_factor (4.0)"), m);
    }

    @Test
    void malformedJsonNamesFileLineAndColumn(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("config.json");
        Files.writeString(f, "{\n  \"vocab_size\": 100,\n  \"hidden_size\": ,\n}");
        String m = message(() -> DecoderConfig.load(f));
        assertTrue(m.startsWith(f + ": malformed JSON at line 3, column"), m);
        m = message(() -> DecoderConfig.fromJson("[1, 2]", "arr.json"));
        assertTrue(m.startsWith("arr.json: "), m);
    }

    @Test
    void missingFileAndOtherBadValues() {
        Path none = tmp.resolve("nowhere/config.json");
        String m = message(() -> DecoderConfig.load(none));
        assertTrue(m.startsWith(none + ": no such file"), m);
        m = message(() -> DecoderConfig.fromJson("{\"model_type\": \"gpt2\"}", "c.json"));
        assertEquals("c.json: model_type \"gpt2\" is not supported; supported: llama, qwen2, qwen3, mistral, internlm, internlm2, chatglm, codegen, moss", m);
        m = message(() -> DecoderConfig.fromJson("{\"architectures\": [\"GPT2LMHeadModel\"]}", "c.json"));
        assertTrue(m.startsWith("c.json: architectures [\"GPT2LMHeadModel\"] is not supported"), m);
        m = message(() -> DecoderConfig.fromJson(base(""), "c.json"));
        assertEquals("c.json: missing required field num_attention_heads", m);
        m = message(() -> DecoderConfig.fromJson(base(", \"num_attention_heads\": \"six\""), "c.json"));
        assertTrue(m.contains("num_attention_heads must be an integer, got \"six\""), m);
        m = message(() -> DecoderConfig.fromJson(base(", \"num_attention_heads\": 6, \"vocab_size\": 0"), "c.json"));
        assertTrue(m.contains("vocab_size (0) must be positive") || m.contains("Duplicate field"), m);
        m = message(() -> small().vocabSize(-3).build());
        assertTrue(m.contains("vocab_size (-3) must be positive"), m);
        m = message(() -> DecoderConfig.fromJson(base(", \"num_attention_heads\": 6, \"tie_word_embeddings\": \"yes\""), "c.json"));
        assertTrue(m.contains("tie_word_embeddings must be true or false"), m);
        m = message(() -> DecoderConfig.fromJson(base(", \"num_attention_heads\": 6, \"hidden_act\": \"gelu\""), "c.json"));
        assertTrue(m.contains("hidden_act \"gelu\""), m);
        m = message(() -> small().eosTokenIds(100).build());
        assertTrue(m.contains("eos_token_id (100) is outside the vocabulary [0, 100)"), m);
        m = message(() -> small().hiddenSize(60).numAttentionHeads(4).headDim(15).build());
        assertTrue(m.contains("head_dim (15) must be even"), m);
        m = message(() -> small().rmsNormEps(0).build());
        assertTrue(m.contains("rms_norm_eps (0.0) must be positive"), m);
    }
}
