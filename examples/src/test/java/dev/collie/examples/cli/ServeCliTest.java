package dev.collie.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static dev.collie.examples.cli.CliTest.assertUserError;
import static dev.collie.examples.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code collie serve} on a saved tiny model with the chat fixture's tokenizer, against {@code collie generate}. */
class ServeCliTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern SERVING = Pattern.compile("serving (\\S+) at (http://\\S+/v1)");

    @TempDir
    static Path tmp;
    static Path model;

    @BeforeAll
    static void trainATinyModel() throws IOException {
        model = tmp.resolve("tiny-chat");
        CliTest.Result r = ChatCliTest.trainTinyModel(tmp, "tiny-chat", "--steps", "2", "--serve", "0");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("serving the model being trained at http://127.0.0.1:"), r.out());
    }

    /** The server answers a chat as {@code generate --chat} does, then stops when its thread is interrupted. */
    @Test
    void servesWhatGenerateChatPrints() throws Exception {
        String prompt = "What is the capital of France?";
        CliTest.Result generated = run("generate", "--model", model.toString(), "--chat", "--prompt", prompt,
                "--max-new-tokens", "6", "--temperature", "1", "--seed", "5");
        assertEquals(0, generated.code(), generated.err());

        StringWriter out = new StringWriter();
        AtomicInteger code = new AtomicInteger(-1);
        Thread serving = new Thread(() -> code.set(new CommandLine(new CollieCli()).setOut(new PrintWriter(out, true))
                .execute("serve", "--model", model.toString(), "--port", "0", "--api-key", "k1")));
        serving.start();
        try {
            Matcher m = SERVING.matcher("");
            long until = System.currentTimeMillis() + 30_000;
            while (!(m = SERVING.matcher(out.toString())).find()) {
                assertTrue(serving.isAlive() && System.currentTimeMillis() < until, "no 'serving' line: " + out);
                Thread.sleep(20);
            }
            assertEquals("tiny-chat", m.group(1));
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            String body = JSON.writeValueAsString(Map.of("model", "tiny-chat", "messages",
                    List.of(Map.of("role", "user", "content", prompt)), "max_tokens", 6, "temperature", 1, "seed", 5));
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(m.group(2) + "/chat/completions"))
                    .header("Authorization", "Bearer k1").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            JsonNode answer = JSON.readTree(r.body());
            assertEquals(generated.out(), answer.at("/choices/0/message/content").asText() + System.lineSeparator());
            assertEquals("tiny-chat", answer.get("model").asText());
            HttpResponse<String> noKey = http.send(HttpRequest.newBuilder(URI.create(m.group(2) + "/models")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(401, noKey.statusCode());
        } finally {
            serving.interrupt();
            serving.join(10_000);
        }
        assertEquals(0, code.get());
    }

    @Test
    void badSettingsAreOneErrorLine() throws IOException {
        assertUserError(run("train", "--preset", "tiny", "--tokenizer", ChatCliTest.CHAT_TOKENIZER.toString(),
                "--data", tmp.resolve("text.txt").toString(), "--tp", "2", "--serve", "0", "--save",
                tmp.resolve("x").toString()), "--serve", "--tp");
        assertUserError(run("serve", "--model", model.toString(), "--max-batch", "0"), "--max-batch 0");
        assertUserError(run("serve", "--model", model.toString(), "--max-queue", "0"), "--max-queue 0");
        assertUserError(run("serve", "--model", model.toString(), "--port", "70000"), "--port 70000");
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            assertUserError(run("serve", "--model", model.toString(), "--port", String.valueOf(taken.getLocalPort())),
                    "cannot listen on 127.0.0.1:" + taken.getLocalPort());
        }
    }
}
