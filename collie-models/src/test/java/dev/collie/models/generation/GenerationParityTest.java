package dev.collie.models.generation;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.testing.NumericalParity;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderForCausalLM;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Generator against Hugging Face's generate() ({@code tools/reference/make_generation_fixtures.py}). */
@NumericalParity
class GenerationParityTest {
    static final Path FIXTURES = Path.of("src/test/resources/fixtures");

    static JsonNode fixture() throws IOException {
        return new ObjectMapper().readTree(FIXTURES.resolve("generation.json").toFile());
    }

    private static double[] doubles(JsonNode n) {
        double[] v = new double[n.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = n.get(i).asDouble();
        }
        return v;
    }

    private static int[] ints(JsonNode n) {
        int[] v = new int[n.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = n.get(i).asInt();
        }
        return v;
    }

    /** Repetition penalty, temperature, top-k and top-p leave the distribution HF's processors leave. */
    @Test
    void samplingDistributionEqualsHuggingFaceProcessors() throws IOException {
        JsonNode p = fixture().get("processors");
        double[] logits = doubles(p.get("logits"));
        int[] history = ints(p.get("history"));
        for (JsonNode c : p.get("cases")) {
            JsonNode s = c.get("settings");
            Generator.Options o = Generator.Options.builder().temperature(s.get("temperature").asDouble())
                    .topK(s.get("top_k").asInt()).topP(s.get("top_p").asDouble())
                    .repetitionPenalty(s.get("repetition_penalty").asDouble()).build();
            double[] got = new Sampler(logits.length, o).distribution(logits.clone(),
                    new Generator.Row(history, o, logits.length));
            double[] want = doubles(c.get("probs"));
            double worst = 0;
            for (int i = 0; i < want.length; i++) {
                assertEquals(want[i] == 0, got[i] == 0, "token " + i + " kept differently with " + s);
                worst = Math.max(worst, Math.abs(got[i] - want[i]));
            }
            assertTrue(worst < 1e-12, s + ": probabilities differ by " + worst);
        }
    }

    /**
     * A left-padded batch, greedy with a repetition penalty and EOS, gives each row the tokens generate() gives that
     * prompt alone (generate() on the padded batch also penalises the pad id of shorter rows: the fixture's third
     * row differs there, and the unpadded first row is equal either way).
     */
    @Test
    void greedyBatchWithRepetitionPenaltyEqualsGenerate() throws IOException {
        JsonNode g = fixture().get("greedy");
        DecoderForCausalLM model = DecoderCheckpoint.load(FIXTURES.resolve("tiny-llama"), DataType.FLOAT);
        List<int[]> prompts = new ArrayList<>();
        for (JsonNode row : g.get("rows")) {
            prompts.add(ints(row.get("prompt")));
            assertTrue(row.get("min_gap").asDouble() > 1e-3, "fixture row too close to a tie: " + row);
        }
        Generator.Options o = Generator.Options.builder().maxNewTokens(g.get("max_new_tokens").asInt())
                .repetitionPenalty(g.get("repetition_penalty").asDouble()).eosIds(g.get("eos_token_id").asInt())
                .padId(g.get("pad_token_id").asInt()).build();
        List<int[]> out = new Generator(model).generate(prompts, o);
        for (int r = 0; r < prompts.size(); r++) {
            assertArrayEquals(ints(g.get("rows").get(r).get("tokens")), out.get(r), "row " + r);
        }
        assertArrayEquals(ints(g.get("rows").get(0).get("batched_tokens")), out.get(0));
    }
}
