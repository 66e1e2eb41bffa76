package dev.collie.examples.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.train.Memory;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static dev.collie.examples.cli.CliTest.TINY;
import static dev.collie.examples.cli.CliTest.TOKENIZER;
import static dev.collie.examples.cli.CliTest.assertUserError;
import static dev.collie.examples.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Inputs that used to crash the JVM or end in a stack trace: one {@code error:} line each, exit code 2, at once. */
class CliLimitsTest {
    private static final String ROWS = TINY.resolve("adamw_rows.jsonl").toString();

    /** Runs the CLI and checks it answered within {@code seconds} (ND4J's start included): nothing huge was built. */
    private static CliTest.Result quick(double seconds, String... args) {
        long t0 = System.nanoTime();
        CliTest.Result r = run(args);
        double sec = (System.nanoTime() - t0) / 1e9;
        assertTrue(sec < seconds, "took " + sec + " s: " + String.join(" ", args));
        return r;
    }

    @Test
    void benchFlagsOutOfRangeAreNamed() {
        assertUserError(quick(10, "bench", "--steps", "-1"), "--steps -1: must be at least 1");
        assertUserError(quick(10, "bench", "--batch", "0"), "--batch 0: must be at least 1");
        assertUserError(quick(10, "bench", "--activation-dtype", "fp16"),
                "--activation-dtype: activation dtype 'fp16': expected fp32 or bf16");
    }

    @Test
    void aVocabularyNoArrayCanHoldIsRefusedBeforeTheModelIsBuilt() {
        assertUserError(quick(10, "bench", "--vocab", "2000000000", "--steps", "1"), "--vocab 2000000000",
                "model.embed_tokens.weight would have vocab_size × hidden_size = 2000000000 × 288");
    }

    @Test
    void aSequenceNoMachineHoldsIsRefusedBeforeTheStep() {
        Assumptions.assumeTrue(Memory.limit().bytes() < 1_000_000_000_000L, "a machine with 1 TB would try it");
        assertUserError(quick(10, "bench", "--seq", "100000", "--steps", "1", "--warmup", "0"),
                "a step over 4 row(s) of 100000 tokens needs at least 1.0 TB (weights and gradients 195.3 MB,"
                        + " one layer's attention scores 960.0 GB, logits 51.2 GB); ", "use a smaller --seq or --batch");
    }

    @Test
    void dumpLogitsIntoADirectoryIsRefused() {
        assertUserError(quick(10, "score", "--model", TINY.toString(), "--ids", "1,2,3", "--dump-logits", "/"),
                "--dump-logits: / is a directory; give the path of a file to write");
    }

    @Test
    void negativeKeepCheckpointsIsRefused(@TempDir Path tmp) {
        assertUserError(quick(10, "train", "--model", TINY.toString(), "--data", ROWS, "--steps", "1",
                "--keep-checkpoints", "-1", "--save", tmp.resolve("out").toString()), "--keep-checkpoints -1");
    }

    /** examples/data/tokenizer with an added token {@code <big>} of id 10^9. */
    private static Path hugeIdTokenizer(Path tmp) throws IOException {
        ObjectMapper m = new ObjectMapper();
        ObjectNode root = (ObjectNode) m.readTree(TOKENIZER.resolve("tokenizer.json").toFile());
        ((ArrayNode) root.get("added_tokens")).addObject().put("id", 1_000_000_000).put("content", "<big>")
                .put("single_word", false).put("lstrip", false).put("rstrip", false).put("normalized", false)
                .put("special", true);
        Path dir = Files.createDirectories(tmp.resolve("tok"));
        m.writeValue(dir.resolve("tokenizer.json").toFile(), root);
        return dir;
    }

    @Test
    void aTokenizerWithIdsBeyondTheVocabularyIsRefused(@TempDir Path tmp) throws IOException {
        Path tok = hugeIdTokenizer(tmp);
        assertUserError(quick(10, "score", "--model", TINY.toString(), "--tokenizer", tok.toString(), "--text", "hi"),
                "token id 1000000000 (\"<big>\") is outside the model's vocabulary: vocab_size is 96 ("
                        + TINY.resolve("config.json") + ")");
        // a preset takes its vocabulary from the tokenizer: 10^9 rows of the embedding, refused before any is made
        Path text = Files.writeString(tmp.resolve("t.txt"), "call me ishmael. ".repeat(50));
        assertUserError(quick(10, "train", "--preset", "tiny", "--tokenizer", tok.toString(), "--data",
                text.toString(), "--steps", "1", "--save", tmp.resolve("out").toString()),
                "--preset tiny with the vocabulary of", "(its largest is token id 1000000000 (\"<big>\"))",
                "vocab_size × hidden_size = 1000000001 × 64");
    }

    @Test
    void resumeWithAnotherSeqOrMicroBatchIsRefusedAndAnotherLrWarned(@TempDir Path tmp) {
        Path out = tmp.resolve("out");
        CliTest.Result first = run("train", "--model", TINY.toString(), "--data", ROWS, "--steps", "2", "--seq", "16",
                "--checkpoint-every", "1", "--save", out.toString());
        assertEquals(0, first.code(), first.err());
        String step1 = out.resolve("checkpoints/step_1").toString();
        String manifest = out.resolve("checkpoints/step_1/trainer.json").toString();
        assertUserError(run("train", "--model", TINY.toString(), "--data", ROWS, "--steps", "2", "--seq", "8",
                "--resume", step1, "--save", out.toString()), manifest + ": the checkpoint was trained with seq_len"
                + " = 16, this run has 8");
        assertUserError(run("train", "--model", TINY.toString(), "--data", ROWS, "--steps", "2", "--seq", "16",
                "--micro-batch", "2", "--resume", step1, "--save", out.toString()),
                "train_micro_batch_size = 1, this run has 2");
        CliTest.Result lr = run("train", "--model", TINY.toString(), "--data", ROWS, "--steps", "2", "--seq", "16",
                "--lr", "0.01", "--resume", step1, "--save", out.toString());
        assertEquals(0, lr.code(), lr.err());
        assertTrue(lr.err().contains(manifest + ": resuming with lr = 0.01; the checkpoint was trained with 0.001"),
                lr.err());
    }

    @Test
    void outOfMemoryIsOneLineNamingWhereAndHowMuch() {
        OutOfMemoryError e = new OutOfMemoryError("Failed to allocate [480000000000] bytes");
        e.setStackTrace(new StackTraceElement[] {
            new StackTraceElement("org.nd4j.linalg.cpu.nativecpu.CpuMemoryManager", "allocate", null, 51),
            new StackTraceElement("dev.collie.core.nn.Attention", "forward", null, 120),
            new StackTraceElement("dev.collie.examples.cli.CollieCli", "run", null, 60)});
        assertEquals("out of memory in Attention.forward: could not allocate 480.0 GB; try a smaller --seq,"
                + " micro-batch (train --micro-batch, bench --batch) or model",
                CollieCli.outOfMemory(new RuntimeException("worker failed", e)));
        assertTrue(CollieCli.outOfMemory(new RuntimeException("Allocation failed: [Requested amount exceeds HOST"
                + " device limits; Limit bytes: [1000]; Requested bytes: [64000000]]"))
                .contains("could not allocate 64.0 MB"));
        assertTrue(CollieCli.outOfMemory(new OutOfMemoryError("Java heap space")).contains("-Xmx"));
        assertNull(CollieCli.outOfMemory(new IllegalStateException("something else")));
    }
}
