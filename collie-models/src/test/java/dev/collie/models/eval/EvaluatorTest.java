package dev.collie.models.eval;

import dev.collie.core.CollieException;
import dev.collie.core.eval.BleuMetric;
import dev.collie.core.eval.EvalBatch;
import dev.collie.core.eval.RougeMetric;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Tape;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.generation.Generator;
import dev.collie.models.tokenizer.HfTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The evaluator on the tiny-llama shape with the repository's tokenizer (vocabulary 4096, so the model is the
 * fixture's config with that vocabulary, randomly initialised): each task's result against the same quantity
 * computed here without the evaluator.
 */
class EvaluatorTest {
    static final Path TINY = Path.of("src/test/resources/fixtures/tiny-llama");
    static final Path TOKENIZER = Path.of("../examples/data/tokenizer");
    static DecoderForCausalLM model;
    static HfTokenizer tok;

    @BeforeAll
    static void load() {
        tok = HfTokenizer.load(TOKENIZER);
        DecoderConfig c = DecoderConfig.load(TINY.resolve("config.json")).toBuilder().vocabSize(tok.vocabSize())
                .build();
        Nd4j.getRandom().setSeed(7);
        model = new DecoderForCausalLM(c, DataType.FLOAT);
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    /** Mean loss of {@code ids} over the tokens from {@code prompt} on, computed on its own: {mean, count}. */
    static double[] loss(int[] ids, int prompt) {
        long[] in = new long[ids.length];
        long[] labels = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            in[i] = ids[i];
            labels[i] = i >= prompt ? ids[i] : CausalLmLoss.IGNORE_INDEX;
        }
        Tape tape = Tape.forInference(1, ids.length);
        INDArray logits = model.forward(tape, Nd4j.createFromArray(new long[][] {in}));
        return new double[] {new CausalLmLoss().forward(tape, logits, Nd4j.createFromArray(new long[][] {labels})),
                ids.length - Math.max(1, prompt)};
    }

    static Evaluator.Builder evaluator(EvalTask task, List<EvalExample> data) {
        return Evaluator.builder().model(model).tokenizer(tok).task(task).data(data);
    }

    @Test
    void perplexityIsTheTokenWeightedLossOfTheTexts() {
        String text = "Call me Ishmael.";
        String input = "Some years ago";
        String output = ", never mind how long precisely";
        double[] a = loss(tok.encode(text, true), 0);
        double[] b = loss(tok.encode(input + output, true), tok.encode(input, true).length);
        double mean = (a[0] * a[1] + b[0] * b[1]) / (a[1] + b[1]);
        Evaluator e = evaluator(EvalTask.PPL, List.of(EvalExample.text(text), EvalExample.inputOutput(input, output)))
                .batchSize(2).build();
        Map<String, Double> r = e.evaluate();
        assertEquals(List.of("perplexity", "loss"), e.producedKeys());
        assertEquals(e.producedKeys(), Evaluator.builder().task(EvalTask.PPL).producedKeys(), "known without a model");
        assertEquals(List.copyOf(r.keySet()), e.producedKeys());
        assertEquals(mean, r.get("loss"), 1e-5);
        assertEquals(Math.exp(mean), r.get("perplexity"), 1e-4 * Math.exp(mean));
    }

    @Test
    void harnessPredictsTheOptionWithTheSmallestMeanLoss() {
        List<String> inputs = List.of("The sea is", "Call me", "A whale is a");
        List<String> options = List.of(" blue", " green and deep", " Ishmael", " fish");
        List<Integer> argmins = new ArrayList<>();
        for (String in : inputs) {
            int prompt = tok.encode(in, true).length;
            double[] l = options.stream().mapToDouble(o -> loss(tok.encode(in + o, true), prompt)[0]).toArray();
            argmins.add(Evaluator.argmin(l));
        }
        // the first two right, the third wrong: accuracy 2/3
        List<EvalExample> data = new ArrayList<>();
        for (int i = 0; i < inputs.size(); i++) {
            int target = i < 2 ? argmins.get(i) : (argmins.get(i) + 1) % options.size();
            data.add(EvalExample.classification(inputs.get(i), options, target));
        }
        Evaluator e = evaluator(EvalTask.CLASSIFICATION_HARNESS, data).batchSize(2).metrics("accuracy", "f1").build();
        Map<String, Double> r = e.evaluate();
        assertEquals(2.0 / 3, r.get("accuracy"), 1e-12);
        assertEquals(List.copyOf(r.keySet()), e.producedKeys());
        assertEquals(e.producedKeys(), Evaluator.builder().task(EvalTask.CLASSIFICATION_HARNESS)
                .metrics("accuracy", "f1").producedKeys(), "known without a model");
        for (int i = 0; i < inputs.size(); i++) {
            assertEquals(options.get(argmins.get(i)), e.predictions().get(i).pred());
            assertEquals(List.of(options.get(data.get(i).target())), e.predictions().get(i).targets());
        }
    }

    @Test
    void helmNormalisesAndMatchesTheLongestOptionPrefix() {
        assertEquals("theanswerb", Evaluator.normalise(" The answer: B."));
        assertEquals(0, Evaluator.matchOption("Paris, France.", List.of("PARIS", "Par", "London")));
        assertEquals(1, Evaluator.matchOption("Paris, France.", List.of("Par", "paris!", "London")));
        assertEquals(-1, Evaluator.matchOption("Rome", List.of("Paris", "...")));
    }

    @Test
    void helmPredictsTheOptionTheGeneratedTextStartsWith() {
        String input = "The sea is";
        int[] out = new Generator(model).generate(tok.encode(input, true), Generator.Options.builder()
                .maxNewTokens(3).eosIds(tok.eosId().getAsInt()).padId(tok.padId()).build());
        String generated = tok.decode(out, true);
        String norm = Evaluator.normalise(generated);
        assertTrue(!norm.isEmpty(), "the greedy output '" + generated + "' normalises to nothing");
        // option 1 is the first normalised character of the output, in upper case and with punctuation
        List<String> options = List.of("zzzz" + norm, " " + norm.substring(0, 1).toUpperCase() + ".");
        Evaluator right = evaluator(EvalTask.CLASSIFICATION_HELM, List.of(
                EvalExample.classification(input, options, 1), EvalExample.classification(input, options, 0)))
                .build();
        Map<String, Double> r = right.evaluate();
        assertEquals(0.5, r.get("accuracy"), 1e-12);
        assertEquals(options.get(1), right.predictions().get(0).pred());
    }

    @Test
    void generationPredictsTheGreedyContinuationAndScoresIt() {
        List<EvalExample> data = List.of(EvalExample.inputOutput("Call me", "Ishmael. Some years ago"),
                EvalExample.inputOutput("Some years ago, never mind how long", "precisely, having little money"),
                new EvalExample("The sea", List.of("is blue", "is deep"), List.of(), -1, null));
        Generator.Options greedy = Generator.Options.builder().maxNewTokens(6).eosIds(tok.eosId().getAsInt())
                .padId(tok.padId()).build();
        List<String> preds = new ArrayList<>();
        for (EvalExample x : data) {
            preds.add(tok.decode(new Generator(model).generate(tok.encode(x.input(), true), greedy), true));
        }
        EvalBatch batch = EvalBatch.ofTexts(preds, data.stream().map(EvalExample::outputs).toList());
        Map<String, Double> expected = new LinkedHashMap<>();
        BleuMetric bleu = new BleuMetric();
        bleu.update(batch);
        expected.putAll(bleu.get());
        RougeMetric rouge = new RougeMetric();
        rouge.update(batch);
        expected.putAll(rouge.get());

        Evaluator e = evaluator(EvalTask.GENERATION, data).maxNewTokens(6).batchSize(3).build();
        Map<String, Double> r = e.evaluate();
        assertEquals(preds, e.predictions().stream().map(Evaluator.Prediction::pred).toList());
        assertEquals(List.copyOf(expected.keySet()), e.producedKeys());
        expected.forEach((k, v) -> assertEquals(v, r.get(k), 1e-12, k));
    }

    @Test
    void predictionsFileHoldsOneLinePerExample(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("preds.jsonl");
        List<EvalExample> data = List.of(EvalExample.classification("Call me", List.of(" Ishmael", " Ahab"), 0));
        Evaluator e = evaluator(EvalTask.CLASSIFICATION_HARNESS, data).predictionsFile(file).build();
        e.evaluate();
        assertEquals(List.of(e.predictions().get(0).toJson()), Files.readAllLines(file));
        assertTrue(Files.readString(file).startsWith("{\"input\":\"Call me\",\"pred\":"), Files.readString(file));
    }

    @Test
    void unknownMetricListsTheKnownOnes() {
        CollieException ex = assertThrows(CollieException.class, () -> evaluator(EvalTask.GENERATION,
                List.of(EvalExample.inputOutput("a", "b"))).metrics("bleu", "blue").build());
        assertTrue(ex.getMessage().contains("unknown metric 'blue'"), ex.getMessage());
        assertTrue(ex.getMessage().contains("accuracy, bleu, decode, f1, perplexity, ppl, rouge"), ex.getMessage());
        CollieException twice = assertThrows(CollieException.class, () -> evaluator(EvalTask.PPL,
                List.of(EvalExample.text("a b"))).metrics("ppl", "perplexity").build());
        assertTrue(twice.getMessage().contains("both report 'perplexity'"), twice.getMessage());
    }

    @Test
    void badLinesAreErrorsNamingFileAndLine(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("cls.jsonl");
        Files.writeString(f, "{\"input\": \"a\", \"options\": [\"x\", \"y\"], \"target\": 1}\n\n"
                + "{\"input\": \"b\", \"options\": [\"x\", \"y\"], \"target\": 2}\n");
        CollieException ex = assertThrows(CollieException.class, () -> EvalData.read(f, EvalTask.CLASSIFICATION_HELM));
        assertTrue(ex.getMessage().startsWith(f + ":3: \"target\""), ex.getMessage());
        assertTrue(ex.getMessage().contains("[0, 2)"), ex.getMessage());

        Files.writeString(f, "{\"input\": \"a\", \"output\": \"b\"}\n{\"input\": \"a\" \"output\": 1}\n");
        ex = assertThrows(CollieException.class, () -> EvalData.read(f, EvalTask.GENERATION));
        assertTrue(ex.getMessage().startsWith(f + ":2: not valid JSON"), ex.getMessage());

        Files.writeString(f, "{\"input\": \"a\", \"output\": 3}\n");
        ex = assertThrows(CollieException.class, () -> EvalData.read(f, EvalTask.GENERATION));
        assertTrue(ex.getMessage().startsWith(f + ":1: \"output\" must be a text"), ex.getMessage());

        Files.writeString(f, "{\"text\": \"a b c\"}\n{\"input\": \"a\", \"output\": [\"b\", \"c\"]}\n");
        ex = assertThrows(CollieException.class, () -> EvalData.read(f, EvalTask.PPL));
        assertTrue(ex.getMessage().startsWith(f + ":2: \"output\" must be a text"), ex.getMessage());
        Files.writeString(f, "{\"text\": \"a b c\"}\n");
        assertEquals(List.of("a b c"), EvalData.read(f, EvalTask.PPL).get(0).outputs());
    }
}
