package dev.collie.serve;

import com.fasterxml.jackson.databind.JsonNode;
import dev.collie.core.data.ChatMessage;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.generation.Generator;
import dev.collie.models.tokenizer.HfTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static dev.collie.serve.TinyModel.CONTEXT;
import static dev.collie.serve.TinyModel.JSON;
import static dev.collie.serve.TinyModel.events;
import static dev.collie.serve.TinyModel.get;
import static dev.collie.serve.TinyModel.json;
import static dev.collie.serve.TinyModel.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every route of a running server on loopback, against {@link Generator} on the same tiny model. */
class OpenAiServerTest {
    static final String KEY = "sk-test-key";
    static HfTokenizer tok;
    static DecoderForCausalLM model;
    static OpenAiServer server;
    static int[] eos;

    @BeforeAll
    static void start() {
        tok = HfTokenizer.load(TinyModel.CHAT_TOKENIZER);
        model = TinyModel.model(tok);
        eos = new int[] {tok.eosId().orElseThrow()};
        server = OpenAiServer.builder(model, tok).modelName("tiny").contextLength(CONTEXT).eosIds(eos).port(0)
                .apiKey(KEY).build().start();
    }

    @AfterAll
    static void stop() {
        server.close();
        tok.close();
    }

    private static JsonNode ok(HttpResponse<String> r) throws IOException {
        assertEquals(200, r.statusCode(), r.body());
        return json(r.body());
    }

    private static HttpResponse<String> completions(Map<String, Object> body) throws Exception {
        return post(server, "/v1/completions", KEY, JSON.writeValueAsString(body));
    }

    private static HttpResponse<String> chat(Map<String, Object> body) throws Exception {
        return post(server, "/v1/chat/completions", KEY, JSON.writeValueAsString(body));
    }

    /** What Generator makes of {@code prompt} with the server's settings: the text (cut at stops) and completion. */
    private static Generator.Completion generate(int[] prompt, Generator.Options o) {
        return new Generator(model, ids -> tok.decode(ids, true)).generate(List.of(prompt), o, (r, id) -> true)
                .completions().get(0);
    }

    private static Generator.Options greedy(int maxTokens, List<String> stops) {
        return Generator.Options.builder().maxNewTokens(maxTokens).eosIds(eos).padId(tok.padId()).stopStrings(stops)
                .build();
    }

    @Test
    void healthAndModels() throws Exception {
        HttpResponse<String> health = get(server, "/health", null);
        assertEquals(200, health.statusCode());
        JsonNode models = ok(get(server, "/v1/models", KEY));
        assertEquals("list", models.get("object").asText());
        assertEquals("tiny", models.at("/data/0/id").asText());
        assertEquals("model", models.at("/data/0/object").asText());
        HttpResponse<String> missing = get(server, "/v1/nothing", KEY);
        assertEquals(404, missing.statusCode());
        assertEquals("not_found", json(missing.body()).at("/error/code").asText());
    }

    /** The chat page's files need no key (ChatPageBrowserTest runs the page itself). */
    @Test
    void theChatPageIsServedWithoutTheKey() throws Exception {
        for (String[] f : new String[][] {{"/", "text/html", "chat.js"}, {"/chat.js", "text/javascript", "fetch("},
                {"/chat.css", "text/css", "#messages"}}) {
            HttpResponse<String> r = get(server, f[0], null);
            assertEquals(200, r.statusCode(), f[0]);
            assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith(f[1]), f[0]);
            assertTrue(r.body().contains(f[2]), f[0]);
            assertTrue(r.headers().firstValue("Content-Security-Policy").orElse("").contains("default-src 'self'"));
        }
        assertEquals(401, post(server, "/", null, "{}").statusCode());
        assertEquals(401, get(server, "/chat.html", null).statusCode());
    }

    @Test
    void everyRouteButHealthNeedsTheKey() throws Exception {
        for (String key : new String[] {null, "wrong"}) {
            HttpResponse<String> r = get(server, "/v1/models", key);
            assertEquals(401, r.statusCode(), r.body());
            JsonNode e = json(r.body()).get("error");
            assertEquals("invalid_request_error", e.get("type").asText());
            assertEquals("invalid_api_key", e.get("code").asText());
            assertTrue(e.has("param") && e.has("message"), r.body());
            assertEquals(401, post(server, "/v1/completions", key, "{\"prompt\": \"a\"}").statusCode());
            assertEquals(401, post(server, "/v1/chat/completions", key, "{}").statusCode());
        }
    }

    @Test
    void greedyCompletionIsGeneratorsWithUsage() throws Exception {
        String prompt = "The capital of France is";
        JsonNode r = ok(completions(Map.of("model", "tiny", "prompt", prompt, "max_tokens", 12, "temperature", 0)));
        int[] ids = tok.encode(prompt, true);
        Generator.Completion c = generate(ids, greedy(12, List.of()));
        assertEquals("text_completion", r.get("object").asText());
        assertEquals(tok.decode(c.tokens(), true), r.at("/choices/0/text").asText());
        assertEquals(c.finish() == Generator.Finish.LENGTH ? "length" : "stop",
                r.at("/choices/0/finish_reason").asText());
        assertEquals(ids.length, r.at("/usage/prompt_tokens").asInt());
        assertEquals(c.tokens().length, r.at("/usage/completion_tokens").asInt());
        assertEquals(ids.length + c.tokens().length, r.at("/usage/total_tokens").asInt());
        assertFalse(r.at("/choices/0/text").asText().isEmpty(), "not vacuous: " + r);
    }

    @Test
    void chatUsesTheTemplateAndAnswersAsTheAssistant() throws Exception {
        List<Map<String, String>> messages = List.of(Map.of("role", "system", "content", "Be terse."),
                Map.of("role", "user", "content", "What is the capital of France?"));
        JsonNode r = ok(chat(Map.of("model", "tiny", "messages", messages, "max_tokens", 10, "temperature", 0)));
        int[] ids = tok.chatTemplate().orElseThrow().encode(List.of(ChatMessage.system("Be terse."),
                ChatMessage.user("What is the capital of France?")), true).ids();
        Generator.Completion c = generate(ids, greedy(10, List.of()));
        assertEquals("chat.completion", r.get("object").asText());
        assertEquals("assistant", r.at("/choices/0/message/role").asText());
        assertEquals(tok.decode(c.tokens(), true), r.at("/choices/0/message/content").asText());
        assertEquals(ids.length, r.at("/usage/prompt_tokens").asInt());
        assertEquals(c.tokens().length, r.at("/usage/completion_tokens").asInt());
    }

    @Test
    void streamedTextIsTheNonStreamedText() throws Exception {
        Map<String, Object> body = Map.of("prompt", "Once upon a time", "max_tokens", 20, "temperature", 0.9,
                "seed", 7);
        JsonNode whole = ok(completions(body));
        Map<String, Object> streamed = new java.util.HashMap<>(body);
        streamed.put("stream", true);
        streamed.put("stream_options", Map.of("include_usage", true));
        HttpResponse<String> r = completions(streamed);
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<JsonNode> chunks = events(r.body());
        StringBuilder text = new StringBuilder();
        String finish = null;
        for (JsonNode ch : chunks) {
            for (JsonNode choice : ch.get("choices")) {
                text.append(choice.get("text").asText());
                if (!choice.get("finish_reason").isNull()) {
                    finish = choice.get("finish_reason").asText();
                }
            }
        }
        assertEquals(whole.at("/choices/0/text").asText(), text.toString());
        assertEquals(whole.at("/choices/0/finish_reason").asText(), finish);
        assertEquals(whole.get("usage"), chunks.get(chunks.size() - 1).get("usage"));
        assertTrue(chunks.size() > 3, "the text came in pieces: " + chunks.size());
    }

    @Test
    void streamedChatIsTheNonStreamedChat() throws Exception {
        Map<String, Object> body = Map.of("messages", List.of(Map.of("role", "user", "content", "Hi there")),
                "max_tokens", 16, "temperature", 0);
        JsonNode whole = ok(chat(body));
        Map<String, Object> streamed = new java.util.HashMap<>(body);
        streamed.put("stream", true);
        List<JsonNode> chunks = events(chat(streamed).body());
        assertEquals("assistant", chunks.get(0).at("/choices/0/delta/role").asText());
        StringBuilder text = new StringBuilder();
        for (JsonNode ch : chunks) {
            assertEquals("chat.completion.chunk", ch.get("object").asText());
            text.append(ch.at("/choices/0/delta/content").asText(""));
        }
        assertEquals(whole.at("/choices/0/message/content").asText(), text.toString());
        assertEquals(whole.at("/choices/0/finish_reason").asText(),
                chunks.get(chunks.size() - 1).at("/choices/0/finish_reason").asText());
    }

    @Test
    void stopStringsCutTheTextStreamedOrNot() throws Exception {
        String prompt = "Tell me a story";
        String full = ok(completions(Map.of("prompt", prompt, "max_tokens", 24, "temperature", 0)))
                .at("/choices/0/text").asText();
        // a stop string from the middle of the greedy text (its first occurrence past the start)
        String stop = null;
        for (int i = 2; i + 2 <= full.length() && stop == null; i++) {
            String s = full.substring(i, i + 2);
            if (full.indexOf(s) == i && !s.contains("\uFFFD")) {
                stop = s;
            }
        }
        assertTrue(stop != null, "no stop string candidate in " + full);
        String expected = full.substring(0, full.indexOf(stop));
        for (Object stops : List.of(stop, List.of("never-there", stop))) {
            JsonNode r = ok(completions(Map.of("prompt", prompt, "max_tokens", 24, "temperature", 0, "stop", stops)));
            assertEquals(expected, r.at("/choices/0/text").asText());
            assertEquals("stop", r.at("/choices/0/finish_reason").asText());
            Generator.Completion c = generate(tok.encode(prompt, true), greedy(24, List.of(stop)));
            assertEquals(expected, Generator.cutAtStop(tok.decode(c.tokens(), true), List.of(stop)));
            assertEquals(c.tokens().length, r.at("/usage/completion_tokens").asInt());
        }
        StringBuilder text = new StringBuilder();
        for (JsonNode ch : events(completions(Map.of("prompt", prompt, "max_tokens", 24, "temperature", 0, "stop",
                stop, "stream", true)).body())) {
            text.append(ch.at("/choices/0/text").asText());
        }
        assertEquals(expected, text.toString());
    }

    @Test
    void badRequestsAreFourHundredsNamingTheProblem() throws Exception {
        String chatPath = "/v1/chat/completions";
        String msgs = "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]";
        Object[][] cases = {
            {"/v1/completions", "{\"prompt\": \"hi\",", null, "JSON"},
            {"/v1/completions", "{\"prompt\": \"hi\", \"temperature\": \"hot\"}", "temperature", "number"},
            {"/v1/completions", "{\"prompt\": 7}", "prompt", "string"},
            {"/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": " + CONTEXT + "}", "max_tokens",
                "maximum context length is " + CONTEXT},
            {"/v1/completions", "{\"prompt\": \"hi\", \"temperature\": -0.5}", "temperature", ">= 0"},
            {"/v1/completions", "{\"prompt\": \"hi\", \"top_p\": 0}", "top_p", "(0, 1]"},
            {"/v1/completions", "{\"prompt\": \"hi\", \"top_p\": 1.5}", "top_p", "(0, 1]"},
            {"/v1/completions", "{\"prompt\": \"hi\", \"stop\": [\"a\", 3]}", "stop", "string"},
            {"/v1/completions", "{\"prompt\": \"hi\", \"stream\": \"yes\"}", "stream", "boolean"},
            {chatPath, "{\"messages\": []}", "messages", "empty"},
            {chatPath, "{}", "messages", "messages"},
            {chatPath, "{" + msgs + ", \"max_tokens\": 1000}", "max_tokens", "maximum context length"},
            {chatPath, "{\"messages\": [{\"content\": \"hi\"}]}", "messages[0].role", "role"},
            {chatPath, "[1, 2]", null, "JSON object"},
        };
        for (Object[] c : cases) {
            HttpResponse<String> r = post(server, (String) c[0], KEY, (String) c[1]);
            assertEquals(400, r.statusCode(), c[1] + " -> " + r.body());
            JsonNode e = json(r.body()).get("error");
            assertEquals("invalid_request_error", e.get("type").asText(), r.body());
            assertEquals(c[2] == null ? null : c[2], e.get("param").isNull() ? null : e.get("param").asText(),
                    r.body());
            assertTrue(e.get("message").asText().contains((String) c[3]), c[1] + " -> " + r.body());
            assertTrue(e.has("code"), r.body());
        }
        // unknown fields are ignored, and the server goes on serving
        ok(post(server, chatPath, KEY, "{" + msgs + ", \"max_tokens\": 2, \"frequency_penalty\": 0,"
                + " \"user\": \"u1\", \"logit_bias\": {}}"));
    }

    @Test
    void severalPromptsAreSeveralChoices() throws Exception {
        JsonNode r = ok(completions(Map.of("prompt", List.of("One", "Two words"), "max_tokens", 5,
                "temperature", 0)));
        assertEquals(2, r.get("choices").size());
        for (int i = 0; i < 2; i++) {
            assertEquals(i, r.at("/choices/" + i + "/index").asInt());
        }
        assertEquals(tok.encode("One", true).length + tok.encode("Two words", true).length,
                r.at("/usage/prompt_tokens").asInt());
    }

    /** A tokenizer without a chat template: the prompt is role-prefixed lines and "assistant:". */
    @Test
    void chatWithoutATemplateIsRolePrefixedLines(@TempDir Path dir) throws Exception {
        Files.copy(TinyModel.CHAT_TOKENIZER.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        try (HfTokenizer bare = HfTokenizer.load(dir);
             OpenAiServer plain = OpenAiServer.builder(model, bare).contextLength(CONTEXT).port(0).build().start()) {
            assertTrue(bare.chatTemplate().isEmpty());
            JsonNode r = ok(post(plain, "/v1/chat/completions", null, JSON.writeValueAsString(Map.of("messages",
                    List.of(Map.of("role", "user", "content", "Hello")), "max_tokens", 6, "temperature", 0))));
            int[] ids = bare.encode("user: Hello\nassistant:", true);
            assertEquals(ids.length, r.at("/usage/prompt_tokens").asInt());
            int[] out = new Generator(model).generate(ids, Generator.Options.builder().maxNewTokens(6)
                    .padId(bare.padId()).build());
            assertEquals(bare.decode(out, true), r.at("/choices/0/message/content").asText());
        }
    }
}
