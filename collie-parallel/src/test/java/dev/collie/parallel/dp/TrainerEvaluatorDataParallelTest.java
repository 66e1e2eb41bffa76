package dev.collie.parallel.dp;

import dev.collie.core.data.Dataset;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.Sample;
import dev.collie.core.dist.Communicator;
import dev.collie.core.tensor.Backends;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.eval.EvalExample;
import dev.collie.models.eval.EvalTask;
import dev.collie.models.eval.Evaluator;
import dev.collie.models.tokenizer.HfTokenizer;
import dev.collie.optim.AdamW;
import dev.collie.parallel.Parallelism;
import dev.collie.parallel.comm.LocalRanks;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Evaluators run by the Trainer over two in-JVM data-parallel replicas (each evaluating every second example and
 * gathering; ZeRO-0 and ZeRO-3) report at every evaluation of a float64 run what they report on one rank:
 * generation's BLEU and ROUGE, harness accuracy and helm F1.
 */
@NumericalParity
@Timeout(120)
class TrainerEvaluatorDataParallelTest {
    private static final Path TINY = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama");
    private static final Path TOKENIZER = Path.of("../examples/data/tokenizer");
    private static final int STEPS = 80;
    /** Inputs and their continuations of at least four words (BLEU-4 has a 4-gram to match). */
    private static final List<String> INPUTS = List.of("Call me", "The sea is", "A whale", "It was the best of",
            "Some years ago");
    private static final List<String> OUTPUTS = List.of(" Ishmael, said the sailor", " deep and blue and cold",
            " is a very big fish", " times, it was the worst", " never mind how long precisely");
    private static HfTokenizer tok;
    private static DecoderConfig shape;
    private static Dataset train;

    @BeforeAll
    static void load() {
        tok = HfTokenizer.load(TOKENIZER);
        shape = DecoderConfig.load(TINY.resolve("config.json")).toBuilder().vocabSize(tok.vocabSize()).build();
        // the texts, so that the model learns to continue the inputs and scores above 0: each repeated to one length
        // (one rank's token mean over two rows is then two replicas' mean of row means), each twice (10 rows, so
        // that every global batch of 2 is whole)
        List<int[]> texts = IntStream.range(0, INPUTS.size())
                .mapToObj(i -> tok.encode(INPUTS.get(i) + OUTPUTS.get(i), true)).toList();
        int length = texts.stream().mapToInt(t -> t.length).max().orElseThrow();
        train = Datasets.of(Stream.concat(texts.stream(), texts.stream()).map(t -> Sample.causal(
                IntStream.range(0, length).map(i -> t[i % t.length]).toArray())).toList());
    }

    /** Five examples (uneven shares over two ranks); classification's right option is the input's continuation. */
    private static List<EvalExample> examples(EvalTask task) {
        return IntStream.range(0, INPUTS.size()).mapToObj(i -> task == EvalTask.GENERATION
                ? EvalExample.inputOutput(INPUTS.get(i), OUTPUTS.get(i))
                : EvalExample.classification(INPUTS.get(i), OUTPUTS, i)).toList();
    }

    @AfterAll
    static void close() {
        tok.close();
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }

    private static Evaluator evaluator(LanguageModel model, EvalTask task, Communicator dp, String... metrics) {
        return Evaluator.builder().model(model).tokenizer(tok).task(task).metrics(metrics)
                .data(examples(task)).batchSize(2).maxNewTokens(8).communicator(dp).build();
    }

    /** Every evaluation of the run on {@code dp} replicas with ZeRO {@code zero}, as each rank saw it. */
    private static List<List<Map<String, Double>>> run(int dp, int zero) {
        CollieConfig config = CollieConfig.builder().shuffle(false).lr(1e-2).trainMicroBatchSize(2 / dp)
                .maxSteps(STEPS).evalPerNSteps(STEPS / 2).trainEpochs(STEPS).workerThreads(1).build();
        return LocalRanks.run(dp, Duration.ofSeconds(60), c -> {
            Nd4j.getRandom().setSeed(5);
            DecoderForCausalLM model = new DecoderForCausalLM(shape, DataType.DOUBLE);
            try (c; Parallelism par = Parallelism.builder().dp(dp).zero(zero).build(c, model)) {
                LanguageModel lm = par.model();
                Communicator group = dp > 1 ? par.dataParallelGroup() : null;
                List<Map<String, Double>> seen = new ArrayList<>();
                par.configure(Trainer.builder()).optimizer(new AdamW(par.optimizerParameters())).config(config)
                        .trainData(train).padId(tok.padId()).localRanks(dp)
                        .evaluations(evaluator(lm, EvalTask.GENERATION, group, "bleu", "rouge"),
                                evaluator(lm, EvalTask.CLASSIFICATION_HARNESS, group, "accuracy"),
                                evaluator(lm, EvalTask.CLASSIFICATION_HELM, group, "f1"))
                        .callbacks(new Callback() {
                            @Override
                            public void onEvaluateEnd(Trainer t, Map<String, Double> results) {
                                seen.add(Map.copyOf(results));
                            }
                        }).build().train();
                return seen;
            }
        });
    }

    @Test
    void twoReplicasEvaluateAsOneRankThroughTheTrainer() {
        List<Map<String, Double>> one = run(1, 0).get(0);
        assertEquals(2, one.size(), "evaluations after steps 40 and 80");
        Map<String, Double> last = one.get(1);
        assertTrue(last.get("bleu") > 0.1 && last.get("rouge-l-f") > 0.1 && last.get("accuracy") > 0.5
                && last.get("f1-macro") > 0.1, "the trained model scores above 0: " + last);
        for (int zero : new int[] {0, 3}) {
            for (List<Map<String, Double>> rank : run(2, zero)) {
                assertEquals(one.size(), rank.size());
                for (int i = 0; i < one.size(); i++) {
                    Map<String, Double> got = rank.get(i);
                    assertEquals(one.get(i).keySet(), got.keySet());
                    for (Map.Entry<String, Double> e : one.get(i).entrySet()) {
                        assertEquals(e.getValue(), got.get(e.getKey()), 1e-9, "ZeRO-" + zero + ", evaluation " + i
                                + ": " + e.getKey());
                    }
                }
            }
        }
    }
}
