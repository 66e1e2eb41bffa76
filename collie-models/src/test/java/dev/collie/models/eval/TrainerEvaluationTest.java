package dev.collie.models.eval;

import dev.collie.core.CollieException;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.Sample;
import dev.collie.core.optim.Sgd;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.HfTokenizer;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Trainer runs {@link Evaluator}s every eval_per_n_steps: their keys are known before training, their results arrive with the evaluation events. */
class TrainerEvaluationTest {
    private static Trainer.Builder trainer(DecoderForCausalLM m, int vocab) {
        Random r = new Random(3);
        List<Sample> rows = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            rows.add(Sample.causal(r.ints(10, 0, vocab).toArray()));
        }
        CollieConfig cfg = CollieConfig.builder().shuffle(false).lr(1e-2).trainMicroBatchSize(2).maxSteps(4)
                .evalPerNSteps(2).workerThreads(1).build();
        return Trainer.builder().model(m).optimizer(new Sgd(m.namedParameters())).config(cfg)
                .trainData(Datasets.of(rows));
    }

    @Test
    void anEvaluatorRunsEveryNStepsWithTheEvaluationEvents() {
        try (HfTokenizer tok = HfTokenizer.load(EvaluatorTest.TOKENIZER)) {
            DecoderConfig c = DecoderConfig.load(EvaluatorTest.TINY.resolve("config.json")).toBuilder()
                    .vocabSize(tok.vocabSize()).build();
            Nd4j.getRandom().setSeed(11);
            DecoderForCausalLM m = new DecoderForCausalLM(c, DataType.FLOAT);
            List<String> options = List.of(" blue", " green", " deep");
            Evaluator e = Evaluator.builder().model(m).tokenizer(tok).task(EvalTask.CLASSIFICATION_HARNESS)
                    .data(List.of(EvalExample.classification("The sea is", options, 0),
                            EvalExample.classification("The grass is", options, 1)))
                    .metrics("accuracy").build();
            List<Map<String, Double>> seen = new ArrayList<>();
            Trainer t = trainer(m, tok.vocabSize()).evaluations(e).callbacks(new Callback() {
                @Override
                public void onEvaluateEnd(Trainer trainer, Map<String, Double> results) {
                    seen.add(Map.copyOf(results));
                }
            }).build();
            assertEquals(Set.of("accuracy", "sequence-accuracy"), t.evaluationKeys());
            t.train();
            assertEquals(2, seen.size(), "evaluations after steps 2 and 4");
            assertEquals(e.evaluate(), seen.get(1), "the last evaluation saw the trained model");
            // two evaluations reporting one name are refused before any step
            CollieException twice = assertThrows(CollieException.class,
                    () -> trainer(m, tok.vocabSize()).evaluations(e, e).build());
            assertTrue(twice.getMessage().contains("two evaluations report 'accuracy'"), twice.getMessage());
        }
    }
}
