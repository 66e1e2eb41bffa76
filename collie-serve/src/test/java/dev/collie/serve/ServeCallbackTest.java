package dev.collie.serve;

import com.fasterxml.jackson.databind.JsonNode;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.Sample;
import dev.collie.core.optim.Sgd;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.generation.Generator;
import dev.collie.models.tokenizer.HfTokenizer;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static dev.collie.serve.TinyModel.CONTEXT;
import static dev.collie.serve.TinyModel.HTTP;
import static dev.collie.serve.TinyModel.JSON;
import static dev.collie.serve.TinyModel.postRequest;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The model being trained, served: a request sent during a step is answered with that step's finished weights. */
class ServeCallbackTest {
    private static final String PROMPT = "Call me Ishmael.";

    @Test
    void aRequestDuringAStepSeesTheWeightsOfThatFinishedStep() throws Exception {
        try (HfTokenizer tok = HfTokenizer.load(TinyModel.CHAT_TOKENIZER)) {
            DecoderForCausalLM model = TinyModel.model(tok);
            int[] prompt = tok.encode(PROMPT, false);
            Generator.Options greedy = Generator.Options.builder().maxNewTokens(8).padId(tok.padId()).build();
            ServeCallback serve = new ServeCallback(OpenAiServer.builder(model, tok).contextLength(CONTEXT).port(0));
            List<String> sent = new ArrayList<>();      // what the server answered, per step asked
            List<String> expected = new ArrayList<>();  // greedy text on the weights after that step
            List<String> before = new ArrayList<>();    // and before it
            Callback probe = new Callback() {
                CompletableFuture<HttpResponse<String>> answer;

                @Override
                public void onBatchBegin(Trainer trainer, long step) {
                    if (answer != null) {
                        sent.add(text(answer.join()));   // the batch ran before this step could take the weights
                        answer = null;
                    }
                    if (step % 2 == 0) {
                        before.add(tok.decode(new Generator(model).generate(prompt, greedy), true));
                        String body = json(Map.of("prompt", PROMPT, "max_tokens", 8, "temperature", 0));
                        answer = HTTP.sendAsync(postRequest(serve.server(), "/v1/completions", null, body),
                                HttpResponse.BodyHandlers.ofString());
                        waitUntilQueued(serve.server());
                    }
                }

                @Override
                public void onBatchEnd(Trainer trainer, StepStats stats) {
                    if (answer != null) {
                        assertFalse(answer.isDone(), "answered while the step held the weights");
                        expected.add(tok.decode(new Generator(model).generate(prompt, greedy), true));
                    }
                }

                @Override
                public void onTrainEnd(Trainer trainer) {
                    if (answer != null) {
                        sent.add(text(answer.join()));
                    }
                }
            };
            List<Sample> rows = new ArrayList<>();
            Random r = new Random(1);
            for (int i = 0; i < 8; i++) {
                rows.add(Sample.causal(r.ints(12, 3, tok.vocabSize()).toArray()));
            }
            CollieConfig config = CollieConfig.builder().trainMicroBatchSize(2).maxSteps(4).trainEpochs(1).lr(0.5)
                    .build();
            Trainer.builder().model(model).optimizer(new Sgd(model.namedParameters())).config(config)
                    .trainData(Datasets.of(rows)).callbacks(serve, probe).build().train();
            assertEquals(2, sent.size());
            assertEquals(expected, sent);
            assertNotEquals(before, expected, "the steps changed the greedy text: the check can tell them apart");
        }
    }

    private static String json(Object o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static String text(HttpResponse<String> r) {
        assertEquals(200, r.statusCode(), r.body());
        try {
            JsonNode n = JSON.readTree(r.body());
            return n.at("/choices/0/text").asText();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static void waitUntilQueued(OpenAiServer server) {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (server.engine().pending() == 0) {
            assertTrue(System.nanoTime() < until, "the request never reached the queue");
            Thread.onSpinWait();
        }
    }
}
