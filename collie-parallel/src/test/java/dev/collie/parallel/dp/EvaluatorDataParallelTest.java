package dev.collie.parallel.dp;

import dev.collie.core.testing.NumericalParity;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.eval.EvalExample;
import dev.collie.models.eval.EvalTask;
import dev.collie.models.eval.Evaluator;
import dev.collie.models.tokenizer.HfTokenizer;
import dev.collie.parallel.comm.LocalRanks;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * An evaluator over two in-JVM data-parallel ranks (each with its own copy of the model, taking every second
 * example, five examples so the shares differ) reports what one rank reports over all the examples, and its
 * gathered predictions are one rank's, in the order of the examples.
 */
@NumericalParity
@Timeout(120)
class EvaluatorDataParallelTest {
    private static final Path TINY = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama");
    private static final Path TOKENIZER = Path.of("../examples/data/tokenizer");

    static List<EvalExample> examples(EvalTask task) {
        List<String> inputs = List.of("Call me", "The sea is", "Some years ago", "A whale", "It was the best of");
        List<String> outputs = List.of(" Ishmael", " blue", " never mind", " is big", " times");
        return java.util.stream.IntStream.range(0, inputs.size()).mapToObj(i -> switch (task) {
            case PPL, GENERATION -> EvalExample.inputOutput(inputs.get(i), outputs.get(i));
            case CLASSIFICATION_HARNESS, CLASSIFICATION_HELM ->
                    EvalExample.classification(inputs.get(i), outputs, i % 3);
        }).toList();
    }

    static Evaluator evaluator(Path dir, EvalTask task, HfTokenizer tok, dev.collie.core.dist.Communicator c) {
        List<String> metrics = switch (task) {
            case PPL -> List.of("ppl");
            case GENERATION -> List.of("bleu", "rouge");
            case CLASSIFICATION_HARNESS, CLASSIFICATION_HELM -> List.of("accuracy", "f1");
        };
        return Evaluator.builder().model(DecoderCheckpoint.load(dir, DataType.FLOAT)).tokenizer(tok).task(task)
                .data(examples(task)).metrics(metrics).batchSize(1).maxNewTokens(4).communicator(c).build();
    }

    @ParameterizedTest
    @EnumSource(EvalTask.class)
    void twoRanksReportWhatOneRankReports(EvalTask task, @TempDir Path tmp) {
        Path dir = tmp.resolve("model");
        try (HfTokenizer tok = HfTokenizer.load(TOKENIZER)) {
            DecoderConfig c = DecoderConfig.load(TINY.resolve("config.json")).toBuilder().vocabSize(tok.vocabSize())
                    .build();
            Nd4j.getRandom().setSeed(5);
            DecoderCheckpoint.save(new DecoderForCausalLM(c, DataType.FLOAT), dir);
            Evaluator one = evaluator(dir, task, tok, null);
            Map<String, Double> expected = one.evaluate();
            List<Object[]> got = LocalRanks.run(2, Duration.ofSeconds(60), comm -> {
                Evaluator e = evaluator(dir, task, tok, comm);
                return new Object[] {e.evaluate(), e.predictions()};
            });
            for (Object[] g : got) {
                @SuppressWarnings("unchecked")
                Map<String, Double> r = (Map<String, Double>) g[0];
                assertEquals(List.copyOf(expected.keySet()), List.copyOf(r.keySet()));
                expected.forEach((k, v) -> assertEquals(v, r.get(k), 1e-6 * Math.max(1, Math.abs(v)), k));
                assertEquals(one.predictions(), g[1]);
            }
        }
    }
}
