package dev.collie.models.decoder;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.KvCache;
import dev.collie.core.nn.Tape;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import dev.collie.models.generation.Generator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.StreamSupport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every family on the LLaMA block against transformers 5.18, on the tiny random checkpoints of
 * tools/reference/make_family_fixtures.py: logits, loss, every parameter gradient, three AdamW steps, greedy
 * generation with the KV cache (Mistral's past its window), and a load → save round trip in the family's own format.
 */
@NumericalParity
class FamilyParityTest {
    static final Path FAMILIES = Path.of("src/test/resources/fixtures/families");

    /** Logits within 1e-4, the loss within 1e-6 relative, every parameter gradient within 1e-4 relative. */
    static void forwardBackwardMatches(Path dir, DecoderForCausalLM model) {
        LlamaParityTest.forwardBackwardMatches(dir, model, 1e-4);
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "qwen3", "mistral", "internlm", "internlm2", "chatglm", "moss-moon"})
    void logitsLossAndGradientsMatchTransformers(String family) {
        Path dir = FAMILIES.resolve(family);
        forwardBackwardMatches(dir, DecoderCheckpoint.load(dir, DataType.FLOAT));
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "qwen3", "mistral", "internlm", "internlm2", "chatglm", "moss-moon"})
    void threeAdamWStepsMatchTorch(String family) {
        Path dir = FAMILIES.resolve(family);
        LlamaParityTest.threeAdamWStepsMatch(DecoderCheckpoint.load(dir, DataType.FLOAT),
                dir.resolve("adamw_reference.safetensors"), family + " ");
    }

    /**
     * Greedy decoding with the KV cache gives generate()'s tokens, and every step's logits within 1e-4 of
     * generate()'s (the tokens alone would let a degenerate run pass: tiny Qwen2 repeats one token).
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "qwen3", "mistral", "internlm", "internlm2", "chatglm", "moss-moon"})
    void greedyGenerationWithTheCacheIsTransformersGenerate(String family) throws IOException {
        Path dir = FAMILIES.resolve(family);
        JsonNode g = new ObjectMapper().readTree(dir.resolve("generation.json").toFile());
        int[] prompt = ints(g.get("prompt"));
        int[] output = ints(g.get("output"));
        int[] want = java.util.Arrays.copyOfRange(output, prompt.length, output.length);
        DecoderForCausalLM model = DecoderCheckpoint.load(dir, DataType.FLOAT);
        assertArrayEquals(want, new Generator(model).generate(prompt, Generator.Options.greedy(want.length)), family);
        KvCache cache = new KvCache();
        long[][] ids = {java.util.Arrays.stream(prompt).asLongStream().toArray()};
        double worst = 0;
        for (int step = 0; step < want.length; step++) {
            INDArray logits = model.forward(Tape.forInference(1, ids[0].length).setKvCache(cache),
                    Nd4j.createFromArray(ids));
            cache.advance(ids[0].length);
            INDArray last = logits.getRow(logits.size(0) - 1);
            INDArray expect = Nd4j.createFromArray(StreamSupport.stream(g.get("step_logits").get(step).spliterator(),
                    false).mapToDouble(JsonNode::asDouble).toArray());
            worst = Math.max(worst, LlamaParityTest.maxAbsDiff(last, expect));
            ids = new long[][] {{output[prompt.length + step]}};
        }
        Agreement.within(family + " logits of 14 cached greedy steps vs generate()'s", worst, 1e-4);
    }

    private static int[] ints(JsonNode a) {
        return StreamSupport.stream(a.spliterator(), false).mapToInt(JsonNode::asInt).toArray();
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "qwen3", "mistral", "internlm", "internlm2", "chatglm", "moss-moon"})
    void loadThenSaveKeepsTheFamilysNamesConfigAndEveryTensorByte(String family, @TempDir Path tmp)
            throws IOException {
        Path dir = FAMILIES.resolve(family);
        DecoderForCausalLM model = DecoderCheckpoint.load(dir, DataType.FLOAT);
        DecoderCheckpoint.save(model, tmp);
        DecoderConfig in = DecoderConfig.load(dir.resolve("config.json"));
        DecoderConfig out = DecoderConfig.load(tmp.resolve("config.json"));
        assertEquals(in.toBuilder().dtype("float32").build(), out);
        assertEquals(family.equals("moss-moon") ? "codegen" : family, out.family().modelType());
        assertSameTensors(dir, tmp);
    }

    /** Every tensor of {@code a}'s model.safetensors is in {@code b}'s, equal to the byte, and no other. */
    private static void assertSameTensors(Path a, Path b) {
        try (SafeTensors x = SafeTensors.open(a.resolve("model.safetensors"));
             SafeTensors y = SafeTensors.open(b.resolve("model.safetensors"))) {
            assertEquals(new java.util.TreeSet<>(x.names()), new java.util.TreeSet<>(y.names()));
            for (String n : x.names()) {
                assertEquals(x.load(n), y.load(n), n);
            }
        }
    }

    /**
     * MOSS-moon-003's own config.json (model_type "moss", CodeGen's keys) over the same weights is the same model:
     * transformers' logits, loss and gradients, and a save writes model_type "moss" back with MOSS's auto_map.
     */
    @Test
    void mossMoonsOwnConfigIsTheSameModelAndSavesAsMoss(@TempDir Path tmp) throws IOException {
        Path src = FAMILIES.resolve("moss-moon");
        Path dir = Files.createDirectories(tmp.resolve("moss"));
        Files.copy(src.resolve("config-moss.json"), dir.resolve("config.json"));
        for (String f : new String[] {"model.safetensors", "reference.safetensors"}) {
            Files.copy(src.resolve(f), dir.resolve(f));
        }
        DecoderForCausalLM model = DecoderCheckpoint.load(dir, DataType.FLOAT);
        assertEquals(ModelFamily.MOSS_MOON, model.config().family());
        forwardBackwardMatches(dir, model);
        Path out = tmp.resolve("out");
        DecoderCheckpoint.save(DecoderCheckpoint.load(dir, DataType.FLOAT), out);
        JsonNode saved = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertEquals("moss", saved.get("model_type").asText());
        assertEquals("MossForCausalLM", saved.get("architectures").get(0).asText());
        assertEquals("modeling_moss.MossForCausalLM", saved.get("auto_map").get("AutoModelForCausalLM").asText());
        assertEquals(model.config().toBuilder().dtype("float32").build(), DecoderConfig.load(out.resolve("config.json")));
        assertSameTensors(src, out);
    }

    @Test
    void bf16CheckpointUpcastsAndMatchesTransformersOnTheUpcastWeights() throws IOException {
        Path dir = FAMILIES.resolve("qwen2-bf16");
        assertTrue(Files.readString(dir.resolve("config.json")).contains("bfloat16"));
        forwardBackwardMatches(dir, DecoderCheckpoint.load(dir, DataType.FLOAT));
    }
}
