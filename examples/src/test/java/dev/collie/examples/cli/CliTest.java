package dev.collie.examples.cli;

import dev.collie.core.io.DirectoryLock;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.tensor.Backends;
import dev.collie.core.tensor.MatmulPrecision;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Runs the collie CLI in-process on the tiny-llama fixtures (made with transformers 5.18 and torch AdamW). */
class CliTest {
    static final Path TINY = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama");
    /** AdamW's eps in runs compared with torch's after 3 steps, as the reference ran: {@link Agreement#ADAM_EPS_ABOVE_NOISE}. */
    private static final String EPS = Double.toString(Agreement.ADAM_EPS_ABOVE_NOISE);
    static final Path TOKENIZER = Path.of("data/tokenizer");

    record Result(int code, String out, String err) {
        /** The lines of standard error that are the CLI's own (not log lines). */
        List<String> errorLines() {
            return err.lines().filter(l -> l.startsWith("error:")).toList();
        }
    }

    static synchronized Result run(String... args) {
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            code = CollieCli.run(args);
        } finally {
            System.out.flush();
            System.err.flush();
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
        return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** Exit code 2, exactly one {@code error:} line that contains every fragment, and no stack trace. */
    static void assertUserError(Result r, String... fragments) {
        assertEquals(2, r.code(), "exit code; stderr:\n" + r.err());
        List<String> lines = r.errorLines();
        assertEquals(1, lines.size(), "one error line expected; stderr:\n" + r.err());
        for (String f : fragments) {
            assertTrue(lines.get(0).contains(f), "'" + f + "' not in: " + lines.get(0));
        }
        assertFalse(r.err().contains("\tat "), "stack trace printed:\n" + r.err());
        assertFalse(r.err().contains("Exception"), "exception printed:\n" + r.err());
    }

    static double maxAbsDiff(INDArray a, INDArray b) {
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE).reshape(a.shape())).amaxNumber().doubleValue();
    }

    static Path copyOfTiny(Path tmp) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("model"));
        for (String f : List.of("config.json", "model.safetensors")) {
            Files.copy(TINY.resolve(f), dir.resolve(f));
        }
        return dir;
    }

    @Test
    @NumericalParity
    void trainWithoutShuffleMatchesThreeTorchAdamWSteps(@TempDir Path tmp) {
        Path save = tmp.resolve("out");
        Path png = tmp.resolve("loss.png");
        Result r = run("train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
                "--micro-batch", "2", "--no-shuffle", "--steps", "3", "--lr", "1e-2", "--weight-decay", "0.01", "--eps", EPS,
                "--save", save.toString(), "--loss-png", png.toString());
        assertEquals(0, r.code(), r.err());
        Agreement.within("final loss vs torch's loss of step 3", Math.abs(finalLoss(r) - 4.619593620300293), 1e-5);
        assertTrue(r.out().contains("saved model to " + save), r.out());
        assertTrue(Files.isRegularFile(save.resolve("config.json")));
        assertTrue(Files.isRegularFile(png));
        assertSavedEqualsTorchAdamW(save);
    }

    /**
     * bf16 matmuls (fp32 weights, gradients and AdamW): the same three steps land within bf16 rounding of
     * torch's fp32 run, and the precision is reset for whatever runs next in this JVM.
     */
    @Test
    @NumericalParity
    void trainWithBf16MatmulsStaysCloseToTheFp32Steps(@TempDir Path tmp) {
        Assumptions.assumeTrue(Backends.bf16MatmulEngine() != null,
                "oneDNN 3.3 is switched off or missing");
        Path save = tmp.resolve("out");
        Result r = run("train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
                "--micro-batch", "2", "--no-shuffle", "--steps", "3", "--lr", "1e-2", "--weight-decay", "0.01", "--eps", EPS,
                "--matmul-precision", "bf16", "--save", save.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("matmuls: bf16 matmuls (oneDNN 3.3"), r.out());
        boolean amx = Backends.bf16MatmulEngine().contains("amx");
        assertEquals(!amx, r.out().contains("this CPU has no AMX, where bf16 matmuls run slower than fp32"), r.out());
        assertEquals(MatmulPrecision.FP32, Backends.matmulPrecision());
        assertEquals(4.619593620300293, finalLoss(r), 2e-2, "torch's fp32 loss of step 3");
        // AdamW moves every weight by ~lr whatever its gradient's size, so where a gradient is near zero bf16
        // rounding may flip its sign; compare the whole update instead: |Δ_bf16 − Δ_torch| / |Δ_torch| over
        // all weights (Δ = final − initial)
        double diff = 0;
        double moved = 0;
        try (SafeTensors ref = SafeTensors.open(TINY.resolve("adamw_reference.safetensors"));
             SafeTensors init = SafeTensors.open(TINY.resolve("model.safetensors"));
             SafeTensors got = SafeTensors.open(save.resolve("model.safetensors"))) {
            for (String name : got.names()) {
                INDArray want = ref.load("adamw/final." + name, DataType.DOUBLE);
                INDArray start = init.load(name, DataType.DOUBLE).reshape(want.shape());
                INDArray have = got.load(name, DataType.DOUBLE).reshape(want.shape());
                diff += Math.pow(have.sub(want).norm2Number().doubleValue(), 2);
                moved += Math.pow(want.sub(start).norm2Number().doubleValue(), 2);
            }
        }
        double relative = Math.sqrt(diff / moved);
        Agreement.within("bf16 matmuls: update relative to torch's fp32 update", relative, 0.1);
        assertUserError(run("train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
                "--steps", "1", "--matmul-precision", "fp16", "--save", tmp.resolve("never").toString()),
                "--matmul-precision", "fp16", "expected auto, fp32 or bf16");
    }

    /** Two data-parallel ranks of one row each take the same 2-row global batches as torch did. */
    @Test
    @NumericalParity
    void trainWithTwoDataParallelRanksMatchesTheSameTorchSteps(@TempDir Path tmp) {
        Path save = tmp.resolve("out");
        Result r = run("train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
                "--dp", "2", "--micro-batch", "1", "--no-shuffle", "--steps", "3", "--lr", "1e-2",
                "--weight-decay", "0.01", "--eps", EPS, "--save", save.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("dp 2 × tp 1 × pp 1 ranks"), r.out());
        assertSavedEqualsTorchAdamW(save);
    }

    /** The same with two processes over TCP, started by {@code collie launch} as torchrun would. */
    @Test
    @NumericalParity
    void launchingTwoProcessesOverTcpMatchesTheSameTorchSteps(@TempDir Path tmp) {
        Path save = tmp.resolve("out");
        Result r = run("launch", "--nproc", "2", "--java-opts", "-Xmx512m", "--", "train", "--model", TINY.toString(),
                "--data", TINY.resolve("adamw_rows.jsonl").toString(), "--backend", "tcp", "--micro-batch", "1",
                "--no-shuffle", "--steps", "3", "--lr", "1e-2", "--weight-decay", "0.01", "--eps", EPS, "--save", save.toString());
        assertEquals(0, r.code(), r.err());
        assertSavedEqualsTorchAdamW(save);
    }

    /** Tensor and pipeline parallel (2 × 2 ranks as threads): the saved model is the one torch trained. */
    @Test
    @NumericalParity
    void trainWithTensorAndPipelineParallelSavesTheSameModel(@TempDir Path tmp) {
        Path save = tmp.resolve("out");
        Result r = run("train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
                "--tp", "2", "--pp", "2", "--micro-batch", "2", "--no-shuffle", "--steps", "3", "--lr", "1e-2",
                "--weight-decay", "0.01", "--eps", EPS, "--save", save.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("dp 1 × tp 2 × pp 2 ranks"), r.out());
        assertSavedEqualsTorchAdamW(save);
    }

    /** dp 2 × tp 2 with ZeRO-3 (each rank loads its share of the checkpoint, then only its owned values stay). */
    @Test
    @NumericalParity
    void trainWithZero3AndTensorParallelSavesTheSameModel(@TempDir Path tmp) {
        Path save = tmp.resolve("out");
        Result r = run("train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
                "--dp", "2", "--tp", "2", "--zero", "3", "--micro-batch", "1", "--no-shuffle", "--steps", "3",
                "--lr", "1e-2", "--weight-decay", "0.01", "--eps", EPS, "--save", save.toString());
        assertEquals(0, r.code(), r.err());
        assertSavedEqualsTorchAdamW(save);
    }

    /** Four processes over TCP (tp 2 × pp 2, started by {@code collie launch}): the same saved model. */
    @Test
    @NumericalParity
    void launchingFourProcessesWithTensorAndPipelineParallelMatchesTorch(@TempDir Path tmp) {
        Path save = tmp.resolve("out");
        Result r = run("launch", "--nproc", "4", "--java-opts", "-Xmx384m", "--", "train", "--model", TINY.toString(),
                "--data", TINY.resolve("adamw_rows.jsonl").toString(), "--backend", "tcp", "--tp", "2", "--pp", "2",
                "--micro-batch", "2", "--no-shuffle", "--steps", "3", "--lr", "1e-2", "--weight-decay", "0.01", "--eps", EPS,
                "--save", save.toString());
        assertEquals(0, r.code(), r.err());
        assertSavedEqualsTorchAdamW(save);
    }

    /** A LoRA adapter trained with tp 2 × pp 2 ranks is the adapter one rank trains (saved in peft's layout). */
    @Test
    @NumericalParity
    void loraUnderTensorAndPipelineParallelSavesTheSingleRankAdapter(@TempDir Path tmp) {
        String[] common = {"train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
            "--lora-r", "4", "--lora-targets", "q_proj,v_proj,down_proj", "--micro-batch", "2", "--no-shuffle",
            "--steps", "3", "--lr", "1e-3", "--eps", EPS};
        Result one = run(concat(common, "--save", tmp.resolve("one").toString()));
        assertEquals(0, one.code(), one.err());
        Result four = run(concat(common, "--tp", "2", "--pp", "2", "--save", tmp.resolve("four").toString()));
        assertEquals(0, four.code(), four.err());
        double worst = 0;
        try (SafeTensors a = SafeTensors.open(tmp.resolve("one/adapter_model.safetensors"));
             SafeTensors b = SafeTensors.open(tmp.resolve("four/adapter_model.safetensors"))) {
            assertEquals(a.names(), b.names());
            for (String n : a.names()) {
                worst = Math.max(worst, maxAbsDiff(a.load(n), b.load(n)));
            }
        }
        Agreement.within("LoRA adapter trained on 4 ranks vs one rank's", worst, 1e-5);
    }

    /** The loss {@code collie train} printed for its last step. */
    private static double finalLoss(Result r) {
        return Double.parseDouble(r.out().lines().filter(l -> l.startsWith("final loss: ")).findFirst()
                .orElseThrow(() -> new AssertionError("no final loss in: " + r.out())).substring("final loss: ".length()));
    }

    static String[] concat(String[] a, String... b) {
        String[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void badParallelSizesAreClearErrors(@TempDir Path tmp) {
        Result r = run("train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
                "--tp", "3", "--save", tmp.resolve("x").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("not divisible by 3"), r.err());
        r = run("train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
                "--pp", "9", "--save", tmp.resolve("x").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("9"), r.err());
        r = run("train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
                "--zero", "2", "--save", tmp.resolve("x").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("add --dp N"), r.err());
    }

    private static void assertSavedEqualsTorchAdamW(Path save) {
        assertSavedEqualsTorchAdamW(TINY, save, "");
    }

    /**
     * The weights saved in {@code save} are torch's after the 3 AdamW steps of {@code fixture}'s
     * adamw_reference.safetensors, within 1e-5, every parameter of the file compared (ChatGLM's file also holds its
     * rotary frequencies, which are not a parameter).
     */
    static void assertSavedEqualsTorchAdamW(Path fixture, Path save, String what) {
        double worst = 0;
        try (SafeTensors ref = SafeTensors.open(fixture.resolve("adamw_reference.safetensors"));
             SafeTensors got = SafeTensors.open(save.resolve("model.safetensors"))) {
            int compared = 0;
            for (String name : ref.names()) {
                if (name.startsWith("adamw/final.")) {
                    String param = name.substring("adamw/final.".length());
                    worst = Math.max(worst, maxAbsDiff(got.load(param), ref.load(name)));
                    compared++;
                }
            }
            assertEquals(got.names().stream().filter(n -> !n.endsWith("rotary_pos_emb.inv_freq")).count(), compared);
        }
        Agreement.within(what + "saved weights vs torch's after 3 AdamW steps", worst, 1e-5);
    }

    @Test
    void scorePrintsTheTransformersLossAndDumpsItsLogits(@TempDir Path tmp) {
        INDArray ids;
        INDArray refLogits;
        try (SafeTensors ref = SafeTensors.open(TINY.resolve("reference.safetensors"))) {
            ids = ref.load("input_ids").getRow(0);
            refLogits = ref.load("logits").get(NDArrayIndex.point(0)).dup();
        }
        long[] row = ids.toLongVector();
        // model(ids, labels=ids).loss from the logits transformers computed for this row
        double sum = 0;
        for (int t = 0; t + 1 < row.length; t++) {
            double[] l = refLogits.getRow(t).toDoubleVector();
            double max = Arrays.stream(l).max().orElseThrow();
            double z = Arrays.stream(l).map(v -> Math.exp(v - max)).sum();
            sum += Math.log(z) + max - l[(int) row[t + 1]];
        }
        double expected = sum / (row.length - 1);
        String csv = String.join(",", Arrays.stream(row).mapToObj(Long::toString).toList());
        Path dump = tmp.resolve("logits.safetensors");
        Result r = run("score", "--model", TINY.toString(), "--ids", csv, "--dump-logits", dump.toString());
        assertEquals(0, r.code(), r.err());
        Matcher m = Pattern.compile("(?m)^loss: (\\S+)$").matcher(r.out());
        assertTrue(m.find(), r.out());
        assertEquals(expected, Double.parseDouble(m.group(1)), 1e-5);
        assertTrue(r.out().contains("perplexity: "), r.out());
        try (SafeTensors st = SafeTensors.open(dump)) {
            INDArray logits = st.load("logits");
            assertEquals(DataType.FLOAT, logits.dataType());
            assertEquals(List.of(12L, 96L), Arrays.stream(logits.shape()).boxed().toList());
            assertTrue(maxAbsDiff(logits, refLogits) < 1e-5);
        }
    }

    @Test
    void presetModelTrainsOnTextAndGeneratesFromItsSavedDirectory(@TempDir Path tmp) throws IOException {
        Path text = tmp.resolve("tale.txt");
        Files.writeString(text, String.join("\n\n", Collections.nCopies(6,
                "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my"
                        + " purse, I thought I would sail about a little and see the watery part of the world.")));
        Path save = tmp.resolve("model");
        Result t = run("train", "--preset", "tiny", "--data", text.toString(), "--tokenizer", TOKENIZER.toString(),
                "--seq", "16", "--micro-batch", "4", "--steps", "3", "--eval-fraction", "0.2", "--save",
                save.toString());
        assertEquals(0, t.code(), t.err());
        assertTrue(t.out().contains("eval loss: "), t.out());
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")) {
            assertTrue(Files.isRegularFile(save.resolve(f)), f + " not saved");
        }
        Result g = run("generate", "--model", save.toString(), "--prompt", "Call me", "--max-new-tokens", "5",
                "--temperature", "0.8", "--seed", "3");
        assertEquals(0, g.code(), g.err());
        assertTrue(g.out().startsWith("Call me"), g.out());
        assertEquals(g.out(), run("generate", "--model", save.toString(), "--prompt", "Call me",
                "--max-new-tokens", "5", "--temperature", "0.8", "--seed", "3").out(), "same seed, same text");
    }

    @Test
    void missingConfigJsonIsOneErrorLine(@TempDir Path tmp) {
        assertUserError(run("score", "--model", tmp.toString(), "--ids", "1,2"), "config.json", "no such file");
    }

    @Test
    void malformedConfigJsonIsOneErrorLine(@TempDir Path tmp) throws IOException {
        Path dir = copyOfTiny(tmp);
        Files.writeString(dir.resolve("config.json"), "{\"hidden_size\": 32,\n  \"vocab_size\": }\n");
        assertUserError(run("score", "--model", dir.toString(), "--ids", "1,2"), "config.json");
    }

    @Test
    void weightsThatDoNotMatchTheConfigAreOneErrorLine(@TempDir Path tmp) throws IOException {
        Path dir = copyOfTiny(tmp);
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("\"intermediate_size\": 80", "\"intermediate_size\": 96"));
        assertUserError(run("score", "--model", dir.toString(), "--ids", "1,2"), "shape", "[80, 32]", "[96, 32]");
    }

    @Test
    void tokenIdOutsideTheVocabularyIsOneErrorLine() {
        assertUserError(run("score", "--model", TINY.toString(), "--ids", "1,999"), "999", "vocabulary", "96");
    }

    @Test
    void malformedIdsAreOneErrorLine() {
        assertUserError(run("score", "--model", TINY.toString(), "--ids", "1,two"), "--ids", "'two'");
    }

    @Test
    void jsonlLineWithoutAKnownFormIsOneErrorLine(@TempDir Path tmp) throws IOException {
        Path data = tmp.resolve("bad.jsonl");
        Files.writeString(data, "{\"tokens\": [1, 2, 3]}\n{\"prompt\": \"hello\"}\n");
        assertUserError(run("train", "--model", TINY.toString(), "--data", data.toString(), "--steps", "1",
                "--save", tmp.resolve("out").toString()), "bad.jsonl:2:", "expected one of");
    }

    @Test
    void missingDataFileIsOneErrorLine(@TempDir Path tmp) {
        assertUserError(run("train", "--model", TINY.toString(), "--data", tmp.resolve("nope.jsonl").toString(),
                "--save", tmp.resolve("out").toString()), "nope.jsonl", "not found");
    }

    @Test
    void unknownConfigFieldIsOneErrorLine(@TempDir Path tmp) throws IOException {
        Path cfg = tmp.resolve("train.yaml");
        Files.writeString(cfg, "lr: 0.01\nlearning_rate_typo: 3\n");
        assertUserError(run("train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
                "--config", cfg.toString(), "--save", tmp.resolve("out").toString()), "learning_rate_typo");
    }

    /**
     * A CoLLiE config's {@code tp_size} and {@code pp_size} are honoured (tp 2 × pp 2 as threads, the model torch
     * trained), and the command line overrides them ({@code --tp 1 --pp 1}: one rank).
     */
    @Test
    @NumericalParity
    void configSizesRunThatLayoutAndOptionsOverrideThem(@TempDir Path tmp) throws IOException {
        Path cfg = tmp.resolve("train.yaml");
        Files.writeString(cfg, "tp_size: 2\npp_size: 2\nlr: 0.01\ntrain_micro_batch_size: 2\nshuffle: false\n");
        String[] common = {"train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
            "--config", cfg.toString(), "--steps", "3", "--weight-decay", "0.01", "--eps", EPS};
        Result r = run(concat(common, "--save", tmp.resolve("split").toString()));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("dp 1 × tp 2 × pp 2 ranks"), r.out());
        assertSavedEqualsTorchAdamW(tmp.resolve("split"));
        Result one = run(concat(common, "--tp", "1", "--pp", "1", "--save", tmp.resolve("one").toString()));
        assertEquals(0, one.code(), one.err());
        assertFalse(one.out().contains(" ranks"), one.out());
        assertSavedEqualsTorchAdamW(tmp.resolve("one"));
    }

    @Test
    void generateWithoutATokenizerIsOneErrorLine() {
        assertUserError(run("generate", "--model", TINY.toString(), "--prompt", "hi"), "tokenizer");
    }

    /** lr 1e30 diverges at once: the run stops with an error, no model is saved, the checkpoints are finite. */
    @Test
    void aDivergingRunStopsWithAnErrorAndSavesNothingNonFinite(@TempDir Path tmp) throws IOException {
        Path save = tmp.resolve("out");
        Result r = run("train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
                "--steps", "8", "--lr", "1e30", "--checkpoint-every", "2", "--save", save.toString());
        assertUserError(r, "consecutive steps had a non-finite loss or gradient norm", "max_nonfinite_steps = 3");
        assertFalse(Files.exists(save.resolve("config.json")), "no model is saved after a diverged run");
        try (var dirs = Files.list(save.resolve("checkpoints"))) {
            for (Path step : dirs.toList()) {
                try (SafeTensors st = SafeTensors.open(step.resolve("model.safetensors"))) {
                    for (String name : st.names()) {
                        assertTrue(Double.isFinite(st.load(name).sumNumber().doubleValue()), step + " " + name);
                    }
                }
            }
        }
    }

    /** What would fail the save is found before the first step: a busy, unwritable or other-kind --save. */
    @Test
    void aSaveThatCannotHappenIsRefusedBeforeTraining(@TempDir Path tmp) throws IOException {
        String[] train = {"train", "--model", TINY.toString(), "--data", TINY.resolve("adamw_rows.jsonl").toString(),
            "--steps", "1"};
        Path busy = tmp.resolve("busy");
        try (DirectoryLock other = DirectoryLock.acquire(busy)) {
            Result r = run(concat(train, "--save", busy.toString()));
            assertUserError(r, busy.toString(), "is being written by another run");
            assertFalse(r.out().contains("step 1/1"), "refused before training:\n" + r.out());
        }
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        Result r = run(concat(train, "--save", file.resolve("out").toString()));
        assertUserError(r, "cannot be created");
        assertFalse(r.out().contains("step 1/1"), r.out());
        Path full = copyOfTiny(tmp);
        r = run(concat(train, "--save", full.toString(), "--lora-r", "2"));
        assertUserError(r, "holds a full model (config.json, model.safetensors)", "peft adapter");
        assertFalse(r.out().contains("step 1/1"), r.out());
    }
}
