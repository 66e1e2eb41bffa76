package dev.collie.serve;

import com.fasterxml.jackson.databind.JsonNode;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.HfTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantReadWriteLock;

import static dev.collie.serve.TinyModel.CONTEXT;
import static dev.collie.serve.TinyModel.HTTP;
import static dev.collie.serve.TinyModel.json;
import static dev.collie.serve.TinyModel.post;
import static dev.collie.serve.TinyModel.postRequest;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The bound on admitted requests, the guard a trainer would hold, and clients that leave mid-stream. */
class ServerQueueTest {
    static HfTokenizer tok;
    static DecoderForCausalLM model;

    @BeforeAll
    static void load() {
        tok = HfTokenizer.load(TinyModel.CHAT_TOKENIZER);
        model = TinyModel.model(tok);
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    private static String request(int maxTokens, boolean stream) {
        return "{\"prompt\": \"Once upon a time\", \"max_tokens\": " + maxTokens + ", \"temperature\": 0"
                + (stream ? ", \"stream\": true" : "") + "}";
    }

    private static void waitFor(java.util.function.BooleanSupplier c, long millis) throws InterruptedException {
        long until = System.currentTimeMillis() + millis;
        while (!c.getAsBoolean()) {
            assertTrue(System.currentTimeMillis() < until, "timed out");
            Thread.sleep(5);
        }
    }

    /**
     * While the guard is held for writing (a trainer's step), the worker waits with its batch; the queue fills to
     * --max-queue and the next request is a 429 with OpenAI's error; once the guard is released all are answered.
     */
    @Test
    void aFullQueueAnswers429AndTheGuardHoldsBatches() throws Exception {
        ReentrantReadWriteLock guard = new ReentrantReadWriteLock();
        try (OpenAiServer s = OpenAiServer.builder(model, tok).contextLength(CONTEXT).maxBatch(1).maxQueue(2)
                .guard(guard).port(0).build().start()) {
            guard.writeLock().lock();
            CompletableFuture<HttpResponse<String>> a;
            CompletableFuture<HttpResponse<String>> b;
            try {
                a = HTTP.sendAsync(postRequest(s, "/v1/completions", null, request(4, false)),
                        HttpResponse.BodyHandlers.ofString());
                b = HTTP.sendAsync(postRequest(s, "/v1/completions", null, request(4, false)),
                        HttpResponse.BodyHandlers.ofString());
                waitFor(() -> s.engine().pending() == 2, 5000);
                HttpResponse<String> full = post(s, "/v1/completions", null, request(4, false));
                assertEquals(429, full.statusCode(), full.body());
                JsonNode e = json(full.body()).get("error");
                assertEquals("queue_full", e.get("code").asText());
                assertTrue(e.get("message").asText().contains("--max-queue"), full.body());
                Thread.sleep(50);
                assertTrue(!a.isDone() && !b.isDone(), "no batch runs while the guard is held for writing");
            } finally {
                guard.writeLock().unlock();
            }
            assertEquals(200, a.get(10, TimeUnit.SECONDS).statusCode());
            assertEquals(200, b.get(10, TimeUnit.SECONDS).statusCode());
            assertEquals(200, post(s, "/v1/completions", null, request(2, false)).statusCode());
        }
    }

    /**
     * A streaming client that closes its connection after the first piece cancels its row: the place it held is
     * freed long before its 50 tokens (50 × 60 ms) would have ended, and a new request is served.
     */
    @Test
    void aClientThatLeavesMidStreamFreesItsPlace() throws Exception {
        try (OpenAiServer s = OpenAiServer.builder(TinyModel.slow(model, 60), tok).contextLength(CONTEXT)
                .maxQueue(1).port(0).build().start()) {
            long t0;
            try (Socket socket = new Socket("127.0.0.1", s.port())) {
                byte[] body = request(50, true).getBytes(StandardCharsets.UTF_8);
                OutputStream out = socket.getOutputStream();
                out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                out.write(body);
                out.flush();
                BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(),
                        StandardCharsets.UTF_8));
                String line;
                while ((line = in.readLine()) != null && !line.contains("data: {")) {
                    // the status line, headers, chunk sizes
                }
                assertTrue(line != null && line.contains("text_completion"), "a first chunk: " + line);
                assertEquals(1, s.engine().pending());
                assertEquals(429, post(s, "/v1/completions", null, request(2, false)).statusCode(),
                        "the stream holds the only place");
                t0 = System.nanoTime();
            }
            waitFor(() -> s.engine().pending() == 0, 2000);
            long freedMillis = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(freedMillis < 1500, "freed after " + freedMillis + " ms, not at the end of the row");
            HttpResponse<String> next = post(s, "/v1/completions", null, request(2, false));
            assertEquals(200, next.statusCode(), next.body());
        }
    }
}
