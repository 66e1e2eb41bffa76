package dev.collie.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.collie.examples.cli.CliTest.assertUserError;
import static dev.collie.examples.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code collie generate} over a JSONL file of prompts, with stop strings, top-k and a repetition penalty. */
class GenerateCliTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final List<String> PROMPTS = List.of("Call me Ishmael.", "Some years ago", "whale");

    @TempDir
    static Path tmp;
    static Path model;
    static Path prompts;

    @BeforeAll
    static void trainATinyModel() throws IOException {
        model = tmp.resolve("model");
        CliTest.Result r = ChatCliTest.trainTinyModel(tmp, "model", "--steps", "3", "--lr", "3e-3");
        assertEquals(0, r.code(), r.err());
        prompts = Files.writeString(tmp.resolve("prompts.jsonl"), "{\"prompt\": \"" + PROMPTS.get(0) + "\"}\n"
                + "{\"input\": \"" + PROMPTS.get(1) + "\"}\n\n{\"prompt\": \"" + PROMPTS.get(2) + "\"}\n");
    }

    private static List<JsonNode> lines(CliTest.Result r) throws IOException {
        assertEquals(0, r.code(), r.err());
        List<String> errLines = r.err().lines().toList();
        assertTrue(errLines.get(errLines.size() - 1).matches("tokens/s: \\d+\\.\\d"), r.err());
        List<JsonNode> out = new java.util.ArrayList<>();
        for (String l : r.out().lines().toList()) {
            out.add(JSON.readTree(l));
        }
        return out;
    }

    /** Batches of 2 give each prompt what it gets alone; stop strings cut the text where they first occur. */
    @Test
    void promptsFileInBatchesEqualsEachPromptAloneAndStopsAtStopStrings() throws IOException {
        List<JsonNode> batched = lines(run("generate", "--model", model.toString(), "--prompts", prompts.toString(),
                "--batch-size", "2", "--max-new-tokens", "8"));
        assertEquals(PROMPTS.size(), batched.size());
        for (int i = 0; i < PROMPTS.size(); i++) {
            JsonNode l = batched.get(i);
            assertEquals(PROMPTS.get(i), l.get("prompt").asText());
            assertTrue(List.of("length", "stop").contains(l.get("finish_reason").asText()), l.toString());
            CliTest.Result alone = run("generate", "--model", model.toString(), "--prompt", PROMPTS.get(i),
                    "--max-new-tokens", "8");
            assertEquals(0, alone.code(), alone.err());
            assertEquals(PROMPTS.get(i) + l.get("output").asText(), alone.out().strip(), "prompt " + i);
        }
        String text = batched.get(0).get("output").asText();
        assertTrue(text.length() >= 3, "the continuation to cut is too short: '" + text + "'");
        String stop = text.substring(1, 3);
        List<JsonNode> stopped = lines(run("generate", "--model", model.toString(), "--prompts", prompts.toString(),
                "--max-new-tokens", "8", "--stop", stop, "--stop", "\u00a7never"));
        assertEquals(text.substring(0, text.indexOf(stop)), stopped.get(0).get("output").asText());
        assertEquals("stop", stopped.get(0).get("finish_reason").asText());
    }

    /** Sampling settings reach the sampler: a seed repeats, and a repetition penalty changes greedy text. */
    @Test
    void samplingSettingsReachTheSampler() throws IOException {
        String[] sample = {"generate", "--model", model.toString(), "--prompts", prompts.toString(),
            "--max-new-tokens", "8", "--temperature", "1.5", "--top-k", "20", "--top-p", "0.95", "--seed", "9"};
        assertEquals(lines(run(sample)).toString(), lines(run(sample)).toString(), "same seed, same text");
        List<JsonNode> greedy = lines(run("generate", "--model", model.toString(), "--prompts", prompts.toString(),
                "--max-new-tokens", "16"));
        List<JsonNode> penalised = lines(run("generate", "--model", model.toString(), "--prompts",
                prompts.toString(), "--max-new-tokens", "16", "--repetition-penalty", "5"));
        assertNotEquals(greedy.toString(), penalised.toString());
    }

    @Test
    void badPromptsAreOneErrorLine() throws IOException {
        Path bad = Files.writeString(tmp.resolve("bad.jsonl"), "{\"prompt\": \"a\"}\n{\"text\": \"b\"}\n");
        assertUserError(run("generate", "--model", model.toString(), "--prompts", bad.toString()), "bad.jsonl:2",
                "\"prompt\"");
        Path notJson = Files.writeString(tmp.resolve("broken.jsonl"), "{\"prompt\": \n");
        assertUserError(run("generate", "--model", model.toString(), "--prompts", notJson.toString()),
                "broken.jsonl:1", "not JSON");
        assertUserError(run("generate", "--model", model.toString(), "--prompt", "a", "--top-k", "-1"), "top-k");
        assertUserError(run("generate", "--model", model.toString(), "--prompt", "a", "--repetition-penalty", "0"),
                "repetition penalty");
        assertEquals(2, run("generate", "--model", model.toString(), "--prompt", "a", "--prompts",
                prompts.toString()).code(), "--prompt and --prompts together");
    }
}
