package dev.collie.models.decoder;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CodeGen's config.json and MOSS's two families under model_type "moss": MOSS-moon-003 (CodeGen's keys) and MOSS's
 * LLaMA-block base (LLaMA's keys), each written back under its own name; what collie does not build is refused.
 */
class CodeGenConfigTest {
    private static final Path MOSS_MOON = FamilyParityTest.FAMILIES.resolve("moss-moon");

    private static String message(Runnable r) {
        return assertThrows(CollieException.class, r::run).getMessage();
    }

    /** The fixture's config.json with {@code from} replaced by {@code to}. */
    private static String codegen(String from, String to) {
        try {
            String json = Files.readString(MOSS_MOON.resolve("config.json"));
            assertTrue(json.contains(from), from);
            return json.replace(from, to);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void readsCodeGensKeys() {
        DecoderConfig c = DecoderConfig.load(MOSS_MOON.resolve("config.json"));
        assertEquals(ModelFamily.CODEGEN, c.family());
        assertEquals(96, c.vocabSize());
        assertEquals(32, c.hiddenSize());
        assertEquals(128, c.intermediateSize());       // n_inner null: 4 · n_embd
        assertEquals(2, c.numHiddenLayers());
        assertEquals(4, c.numAttentionHeads());
        assertEquals(4, c.numKeyValueHeads());
        assertEquals(8, c.headDim());
        assertEquals(4, c.rotaryDim());
        assertEquals(1e-5, c.rmsNormEps());
        assertEquals(64, c.maxPositionEmbeddings());
        assertEquals("gelu_new", c.hiddenAct());
        assertEquals(0.1, c.initializerRange());
        assertEquals(1, c.bosTokenId().getAsInt());
        assertEquals(List.of(2), c.eosTokenIds());
        assertEquals(List.of("qkv_proj"), c.family().loraTargets());
        // θ_i = 10000^(−2i/rotary_dim) on the rotated dimensions only
        assertEquals(2, c.ropeInvFreq().length);
        assertEquals(0.01, c.ropeInvFreq()[1], 1e-15);
    }

    @Test
    void writesCodeGensKeysBack() throws IOException {
        DecoderConfig c = DecoderConfig.load(MOSS_MOON.resolve("config.json"));
        JsonNode o = new ObjectMapper().readTree(c.toJson());
        assertEquals("codegen", o.get("model_type").asText());
        assertEquals("CodeGenForCausalLM", o.get("architectures").get(0).asText());
        assertTrue(o.get("n_inner").isNull());
        assertEquals(4, o.get("rotary_dim").asInt());
        assertEquals(32, o.get("n_embd").asInt());
        assertEquals("gelu_new", o.get("activation_function").asText());
        assertTrue(!o.has("hidden_size") && !o.has("rms_norm_eps"), o.toString());
        assertEquals(c, DecoderConfig.fromJson(c.toJson(), "saved"));
        DecoderConfig wider = c.toBuilder().intermediateSize(100).build();
        assertEquals(100, new ObjectMapper().readTree(wider.toJson()).get("n_inner").asInt());
        assertEquals(wider, DecoderConfig.fromJson(wider.toJson(), "saved"));
    }

    @Test
    void mossWithCodeGensKeysIsMossMoonAndSavesAsMoss() {
        DecoderConfig moss = DecoderConfig.load(MOSS_MOON.resolve("config-moss.json"));
        assertEquals(ModelFamily.MOSS_MOON, moss.family());
        DecoderConfig codegen = DecoderConfig.load(MOSS_MOON.resolve("config.json"));
        assertEquals(codegen.toBuilder().family(ModelFamily.MOSS_MOON).autoMap(moss.autoMap()).build(), moss);
        assertEquals("modeling_moss.MossForCausalLM", moss.autoMap().get("AutoModelForCausalLM"));
        assertTrue(moss.toJson().contains("\"model_type\": \"moss\""), moss.toJson());
        assertTrue(moss.toJson().contains("\"MossForCausalLM\""), moss.toJson());
        assertEquals(moss, DecoderConfig.fromJson(moss.toJson(), "saved"));
    }

    @Test
    void mossWithLlamasKeysIsTheLlamaBlockSavedAsMoss() throws IOException {
        String json = "{\"architectures\": [\"MossForCausalLM\"], \"model_type\": \"moss\", \"vocab_size\": 100,"
                + " \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2,"
                + " \"num_attention_heads\": 4, \"rms_norm_eps\": 1e-6, \"hidden_act\": \"silu\","
                + " \"auto_map\": {\"AutoModelForCausalLM\": \"modeling_moss.MossForCausalLM\"}}";
        DecoderConfig c = DecoderConfig.fromJson(json, "moss-base.json");
        assertEquals(ModelFamily.MOSS, c.family());
        assertEquals(FamilyLayout.LLAMA, c.family().layout());
        assertEquals(16, c.headDim());
        assertEquals(16, c.rotaryDim());
        assertEquals(List.of("q_proj", "v_proj"), c.family().loraTargets());
        JsonNode o = new ObjectMapper().readTree(c.toJson());
        assertEquals("moss", o.get("model_type").asText());
        assertEquals("MossForCausalLM", o.get("architectures").get(0).asText());
        assertEquals(64, o.get("hidden_size").asInt());
        assertEquals(c, DecoderConfig.fromJson(c.toJson(), "saved"));
        // by architectures alone, too
        assertEquals(ModelFamily.MOSS, DecoderConfig.fromJson(json.replace("\"model_type\": \"moss\",", ""),
                "c.json").family());
        assertTrue(new DecoderForCausalLM(c, DataType.FLOAT).namedParameters()
                .containsKey("model.layers.1.self_attn.q_proj.weight"));
    }

    @Test
    void mossWithNeitherSizeKeyNamesBoth() {
        String m = message(() -> DecoderConfig.fromJson("{\"model_type\": \"moss\", \"vocab_size\": 100}", "c.json"));
        assertEquals("c.json: model_type \"moss\" is MOSS-moon-003 (CodeGen's block) (n_embd) or MOSS's LLaMA-block"
                + " base (hidden_size), but config.json has none of those keys", m);
    }

    @Test
    void aQuantizedMossIsRefused() throws IOException {
        String json = Files.readString(MOSS_MOON.resolve("config-moss.json"))
                .replace("\"vocab_size\": 96", "\"vocab_size\": 96, \"wbits\": 4, \"groupsize\": 128");
        String m = message(() -> DecoderConfig.fromJson(json, "int4/config.json"));
        assertEquals("int4/config.json: wbits 4 and groupsize 128 make this a quantized MOSS checkpoint (GPTQ),"
                + " whose packed integer weights collie cannot load or train; use the float16 model"
                + " (fnlp/moss-moon-003-sft or -base)", m);
    }

    @Test
    void headsNotDivisibleByTheFourQkvGroupsAreRefusedNamingBoth() {
        String json = codegen("\"n_head\": 4", "\"n_head\": 2");
        String m = message(() -> DecoderConfig.fromJson(json, "c.json"));
        assertEquals("c.json: n_head (2) must be divisible by mp_num (4), the number of groups a codegen model lays"
                + " qkv_proj out in", m);
    }

    @Test
    void whatCollieDoesNotBuildIsRefusedNamingTheField() {
        String m = message(() -> DecoderConfig.fromJson(codegen("\"gelu_new\"", "\"gelu\""), "c.json"));
        assertEquals("c.json: activation_function \"gelu\" is not supported: CodeGen and MOSS-moon-003 use"
                + " \"gelu_new\"", m);
        m = message(() -> DecoderConfig.fromJson(codegen("\"resid_pdrop\": 0.0", "\"resid_pdrop\": 0.1"), "c.json"));
        assertTrue(m.startsWith("c.json: resid_pdrop (0.1) must be 0"), m);
        m = message(() -> DecoderConfig.fromJson(codegen("\"rotary_dim\": 4", "\"rotary_dim\": 10"), "c.json"));
        assertEquals("c.json: rotary_dim (10) must be even, positive and at most the head size n_embd / n_head (8)", m);
        m = message(() -> DecoderConfig.fromJson(codegen("\"tie_word_embeddings\": false",
                "\"tie_word_embeddings\": true"), "c.json"));
        assertTrue(m.contains("tie_word_embeddings must be false"), m);
        m = message(() -> DecoderConfig.fromJson(codegen("\"n_embd\": 32", "\"n_embd\": 34"), "c.json"));
        assertEquals("c.json: n_embd (34) must be divisible by n_head (4)", m);
        m = message(() -> DecoderConfig.builder(ModelFamily.CODEGEN).vocabSize(96).hiddenSize(32)
                .intermediateSize(128).numHiddenLayers(1).numAttentionHeads(4).numKeyValueHeads(2).build());
        assertTrue(m.contains("multi-head attention over heads of n_embd / n_head"), m);
    }

    @Test
    void codeGenParametersAgreeWithTheBuiltModel() {
        DecoderConfig c = DecoderConfig.load(MOSS_MOON.resolve("config.json"));
        DecoderForCausalLM model = new DecoderForCausalLM(c, DataType.FLOAT);
        assertEquals(31328, c.parameterCount());          // as transformers counts the fixture's model
        assertEquals(model.parameterCount(), c.parameterCount());
        java.util.Map<String, long[]> expected = new java.util.TreeMap<>();
        c.forEachParameter(expected::put);
        assertEquals(expected.keySet(), new java.util.TreeSet<>(model.namedParameters().keySet()));
        expected.forEach((n, s) -> org.junit.jupiter.api.Assertions.assertArrayEquals(s,
                model.namedParameters().get(n).shape(), n));
    }
}
