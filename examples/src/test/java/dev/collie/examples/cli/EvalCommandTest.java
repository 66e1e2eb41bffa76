package dev.collie.examples.cli;

import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.collie.examples.cli.CliTest.assertUserError;
import static dev.collie.examples.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code collie eval} in-process on a model of the tiny-llama shape with the repository's tokenizer (the fixture's
 * config with the tokenizer's vocabulary of 4096, randomly initialised, saved with the tokenizer files).
 */
class EvalCommandTest {
    @TempDir
    static Path tmp;
    static Path model;

    @BeforeAll
    static void save() throws IOException {
        model = tmp.resolve("model");
        DecoderConfig c = DecoderConfig.load(CliTest.TINY.resolve("config.json")).toBuilder().vocabSize(4096).build();
        Nd4j.getRandom().setSeed(11);
        DecoderCheckpoint.save(new DecoderForCausalLM(c, DataType.FLOAT), model);
        for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) {
            Files.copy(CliTest.TOKENIZER.resolve(f), model.resolve(f));
        }
    }

    private static Path write(String name, String text) throws IOException {
        Path f = tmp.resolve(name);
        Files.writeString(f, text);
        return f;
    }

    @Test
    void pplOfOneTextEqualsScoresPerplexity() throws IOException {
        String text = "Call me Ishmael. Some years ago, never mind how long precisely.";
        Path data = write("ppl.jsonl", "{\"text\": \"" + text + "\"}\n");
        CliTest.Result e = run("eval", "--model", model.toString(), "--data", data.toString(), "--task", "ppl");
        assertEquals(0, e.code(), e.err());
        CliTest.Result s = run("score", "--model", model.toString(), "--text", text);
        assertEquals(0, s.code(), s.err());
        String ppl = s.out().lines().filter(l -> l.startsWith("perplexity: ")).findFirst().orElseThrow();
        assertEquals(List.of(ppl, "loss: " + e.out().lines().toList().get(1).substring(6)), e.out().lines().toList());
        double scoreLoss = Double.parseDouble(s.out().lines().filter(l -> l.startsWith("loss: ")).findFirst()
                .orElseThrow().substring(6));
        assertEquals(String.format(java.util.Locale.ROOT, "loss: %.4f", scoreLoss), e.out().lines().toList().get(1));
    }

    @Test
    void generationPrintsOneLinePerValueAndWritesPredictions() throws IOException {
        Path data = write("gen.jsonl", "{\"input\": \"Call me\", \"output\": \"Ishmael\"}\n"
                + "{\"input\": \"The sea\", \"output\": \"is deep and blue\"}\n");
        Path preds = tmp.resolve("out/preds.jsonl");
        CliTest.Result r = run("eval", "--model", model.toString(), "--data", data.toString(), "--task", "generation",
                "--metrics", "bleu,rouge", "--max-new-tokens", "4", "--predictions", preds.toString());
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals(10, lines.size(), r.out());    // bleu and rouge-1/2/l × p/r/f
        assertTrue(lines.get(0).matches("bleu: \\d\\.\\d{4}"), lines.get(0));
        assertTrue(lines.get(9).matches("rouge-l-f: \\d\\.\\d{4}"), lines.get(9));
        List<String> written = Files.readAllLines(preds);
        assertEquals(2, written.size());
        assertTrue(written.get(1).startsWith("{\"input\":\"The sea\",\"pred\":"), written.get(1));
        assertTrue(written.get(1).endsWith(",\"target\":\"is deep and blue\"}"), written.get(1));
    }

    @Test
    void classificationPrintsAccuracyInBothStyles() throws IOException {
        Path data = write("cls.jsonl",
                "{\"input\": \"Call me\", \"options\": [\" Ishmael\", \" Ahab\"], \"target\": 0}\n"
                + "{\"input\": \"The sea is\", \"options\": [\" blue\", \" dry\"], \"target\": 1}\n");
        for (String style : List.of("harness", "helm")) {
            CliTest.Result r = run("eval", "--model", model.toString(), "--data", data.toString(), "--task",
                    "classification", "--style", style, "--metrics", "accuracy");
            assertEquals(0, r.code(), r.err());
            List<String> lines = r.out().lines().toList();
            assertEquals(2, lines.size(), r.out());
            assertTrue(lines.get(0).matches("accuracy: (0\\.0000|0\\.5000|1\\.0000)"), lines.get(0));
            assertTrue(lines.get(1).startsWith("sequence-accuracy: "), lines.get(1));
        }
    }

    @Test
    void badInputIsOneErrorLine() throws IOException {
        Path data = write("bad.jsonl", "{\"input\": \"a\", \"output\": \"b\"}\n{\"input\": \"a\"}\n");
        assertUserError(run("eval", "--model", model.toString(), "--data", data.toString(), "--task", "generation",
                "--metrics", "bleu,blue"), "unknown metric 'blue'", "known: accuracy, bleu, decode, f1, perplexity,"
                + " ppl, rouge");
        assertUserError(run("eval", "--model", model.toString(), "--data", data.toString(), "--task", "generation"),
                data + ":2: \"output\" must be a text (missing)");
        assertUserError(run("eval", "--model", model.toString(), "--data", data.toString(), "--task", "summary"),
                "unknown task 'summary'", "ppl, generation, classification");
    }
}
