package dev.collie.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.data.ChatFormat;
import dev.collie.core.data.ChatMessage;
import dev.collie.core.data.Tokenizer;
import dev.collie.core.train.LanguageModel;
import dev.collie.models.generation.Generator;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.http.Context;
import io.javalin.http.HandlerType;
import jakarta.servlet.http.HttpServletResponse;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.locks.ReadWriteLock;

/**
 * An OpenAI-compatible HTTP server over a {@link LanguageModel} and its tokenizer: {@code POST /v1/completions},
 * {@code POST /v1/chat/completions} (both also as server-sent events with {@code "stream": true}),
 * {@code GET /v1/models}, {@code GET /health} and a chat page at {@code /} (files in this jar). Requests are
 * decoded in batches by a {@link BatchEngine}.
 * <pre>{@code
 * try (OpenAiServer server = OpenAiServer.builder(model, tokenizer).modelName("tiny").contextLength(2048)
 *         .eosIds(2).port(8000).build().start()) {
 *     ...   // http://127.0.0.1:8000/v1
 * }
 * }</pre>
 */
public final class OpenAiServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(OpenAiServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Tokens of a completion when the request names no max_tokens (OpenAI's default); a chat gets the context. */
    static final int DEFAULT_COMPLETION_TOKENS = 16;
    /** Seconds between comments on an idle stream, by which a client that has gone is noticed. */
    private static final long KEEP_ALIVE_MILLIS = 1000;

    private final Builder b;
    private final BatchEngine engine;
    private final Javalin app;
    private final long created = System.currentTimeMillis() / 1000;
    private final byte[] expectedAuthorization;

    private OpenAiServer(Builder b) {
        this.b = b;
        Tokenizer tok = b.tokenizer;
        this.engine = new BatchEngine(b.model, ids -> tok.decode(ids, true), b.maxBatch, b.maxQueue, b.guard);
        this.expectedAuthorization = b.apiKey == null ? null
                : ("Bearer " + b.apiKey).getBytes(StandardCharsets.UTF_8);
        this.app = Javalin.create(config -> {
            config.startup.showJavalinBanner = false;
            config.startup.showOldJavalinVersionWarning = false;
            config.http.compressionStrategy = CompressionStrategy.NONE;
            config.routes.before(this::authorize);
            config.routes.get("/health", ctx -> json(ctx, JSON.createObjectNode().put("status", "ok")));
            for (String path : ChatPage.paths()) {
                config.routes.get(path, ChatPage::serve);
            }
            config.routes.get("/v1/models", this::models);
            config.routes.post("/v1/completions", ctx -> complete(ctx, false));
            config.routes.post("/v1/chat/completions", ctx -> complete(ctx, true));
            config.routes.exception(ApiException.class, (e, ctx) -> error(ctx, e));
            config.routes.exception(Exception.class, (e, ctx) -> {
                LOG.error("{} {} failed", ctx.method(), ctx.path(), e);
                error(ctx, new ApiException(500, "server_error", "The server failed: " + e, null, null));
            });
            config.routes.error(404, ctx -> error(ctx, new ApiException(404, "invalid_request_error",
                    "No route " + ctx.method() + " " + ctx.path() + ".", null, "not_found")));
        });
    }

    public static Builder builder(LanguageModel model, Tokenizer tokenizer) {
        return new Builder(model, tokenizer);
    }

    /** Starts listening; returns this. */
    public OpenAiServer start() {
        app.start(b.host, b.port);
        return this;
    }

    /** The port it listens on (the one chosen when built with port 0). */
    public int port() {
        return app.port();
    }

    /** Its base URL, {@code http://HOST:PORT/v1}. */
    public String url() {
        return "http://" + b.host + ":" + port() + "/v1";
    }

    /** The engine that decodes its requests. */
    public BatchEngine engine() {
        return engine;
    }

    /** Stops listening, then the engine. */
    @Override
    public void close() {
        app.stop();
        engine.close();
    }

    private void authorize(Context ctx) {
        if (expectedAuthorization == null || ctx.path().equals("/health")
                || HandlerType.GET.equals(ctx.method()) && ChatPage.paths().contains(ctx.path())) {
            return;
        }
        String given = ctx.header("Authorization");
        if (given == null || !MessageDigest.isEqual(expectedAuthorization, given.getBytes(StandardCharsets.UTF_8))) {
            throw new ApiException(401, "invalid_request_error", given == null
                    ? "You didn't provide an API key: send the header 'Authorization: Bearer KEY'."
                    : "Incorrect API key provided.", null, "invalid_api_key");
        }
    }

    private void models(Context ctx) {
        ObjectNode root = JSON.createObjectNode().put("object", "list");
        root.putArray("data").addObject().put("id", b.modelName).put("object", "model").put("created", created)
                .put("owned_by", "collie").put("max_model_len", b.contextLength);
        json(ctx, root);
    }

    private void complete(Context ctx, boolean chat) throws IOException {
        JsonNode body;
        try {
            body = JSON.readTree(ctx.body());
        } catch (JsonProcessingException e) {
            throw ApiException.invalid("The body of the request is not valid JSON: " + e.getOriginalMessage(), null);
        }
        OpenAiRequest q = OpenAiRequest.parse(body, chat);
        List<Generator.Request> requests = new ArrayList<>();
        int promptTokens = 0;
        for (int[] ids : chat ? List.of(chatIds(q.messages())) : q.prompts().stream()
                .map(p -> b.tokenizer.encode(p, true)).toList()) {
            requests.add(new Generator.Request(ids, options(q, ids.length, chat ? "messages" : "prompt")));
            promptTokens += ids.length;
        }
        BatchEngine.Submission s;
        try {
            s = engine.submit(requests);
        } catch (BatchEngine.QueueFullException e) {
            throw new ApiException(429, "rate_limit_error", "The server is busy: " + e.getMessage() + ".", null,
                    "queue_full");
        }
        Reply reply = new Reply(chat, (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", ""),
                System.currentTimeMillis() / 1000, promptTokens, q.stop());
        if (q.stream()) {
            stream(ctx, s, reply, q.includeUsage());
        } else {
            respond(ctx, s, reply);
        }
    }

    /** The generator settings of {@code q} for a prompt of {@code promptTokens}, checked against the context. */
    private Generator.Options options(OpenAiRequest q, int promptTokens, String promptParam) {
        if (promptTokens == 0) {
            throw ApiException.invalid("The prompt has no tokens.", promptParam);
        }
        int room = b.contextLength - promptTokens;
        int max = q.maxTokens() != null ? q.maxTokens() : promptParam.equals("prompt")
                ? Math.min(DEFAULT_COMPLETION_TOKENS, room) : room;
        if (max < 1 || promptTokens + max > b.contextLength) {
            throw ApiException.invalid("This model's maximum context length is " + b.contextLength + " tokens."
                    + " However, you requested " + (promptTokens + Math.max(max, 0)) + " tokens (" + promptTokens
                    + " in the " + promptParam + ", " + Math.max(max, 0) + " for the completion). Please reduce the"
                    + " length of the " + promptParam + " or of the completion.",
                    q.maxTokens() != null ? "max_tokens" : promptParam);
        }
        return Generator.Options.builder().maxNewTokens(max).temperature(q.temperature()).topP(q.topP())
                .topK(q.topK()).repetitionPenalty(q.repetitionPenalty()).stopStrings(q.stop())
                .seed(q.seed() != null ? q.seed() : ThreadLocalRandom.current().nextLong()).eosIds(b.eosIds)
                .padId(b.tokenizer.padId()).build();
    }

    /**
     * The prompt of a chat: the tokenizer's chat template with the assistant's turn opened; without a template,
     * {@code role: content} lines and {@code assistant:}, tokenized with the tokenizer's special tokens.
     */
    private int[] chatIds(List<ChatMessage> messages) {
        Optional<ChatFormat> format = b.tokenizer.chat();
        if (format.isEmpty()) {
            return b.tokenizer.encode(plainChat(messages), true);
        }
        synchronized (format.get()) {
            return format.get().encode(messages, true).ids();
        }
    }

    /** The prompt of a chat for a tokenizer without a template: a line per message, then {@code assistant:}. */
    static String plainChat(List<ChatMessage> messages) {
        StringBuilder text = new StringBuilder();
        for (ChatMessage m : messages) {
            text.append(m.role()).append(": ").append(m.content()).append('\n');
        }
        return text.append("assistant:").toString();
    }

    private void respond(Context ctx, BatchEngine.Submission s, Reply reply) {
        try {
            s.awaitDone();
        } catch (InterruptedException e) {
            s.cancel();
            Thread.currentThread().interrupt();
            throw new ApiException(503, "server_error", "The server is shutting down.", null, null);
        }
        if (s.failure() != null) {
            throw new CollieException("generation failed: " + s.failure(), s.failure());
        }
        ObjectNode root = reply.head(false);
        ArrayNode choices = root.putArray("choices");
        int completionTokens = 0;
        for (int i = 0; i < s.size(); i++) {
            Generator.Completion c = s.completion(i);
            completionTokens += c.tokens().length;
            ObjectNode choice = choices.addObject().put("index", i);
            String text = reply.text(c);
            if (reply.chat) {
                choice.putObject("message").put("role", "assistant").put("content", text);
            } else {
                choice.put("text", text);
            }
            choice.putNull("logprobs");
            choice.put("finish_reason", finishReason(c.finish()));
        }
        root.set("usage", reply.usage(completionTokens));
        json(ctx, root);
    }

    /**
     * Server-sent events in OpenAI's chunk format: each piece of text as it is decoded, a last chunk per choice with
     * its finish reason, the usage if asked, and {@code data: [DONE]}. A write that fails (the client has gone)
     * cancels the submission's rows.
     */
    private void stream(Context ctx, BatchEngine.Submission s, Reply reply, boolean includeUsage) throws IOException {
        HttpServletResponse res = ctx.res();
        res.setStatus(200);
        res.setContentType("text/event-stream");
        res.setCharacterEncoding("UTF-8");
        res.setHeader("Cache-Control", "no-cache");
        OutputStream out = res.getOutputStream();
        int n = s.size();
        TextStream[] texts = new TextStream[n];
        int[] seenTokens = new int[n];
        boolean[] ended = new boolean[n];
        for (int i = 0; i < n; i++) {
            texts[i] = new TextStream(reply.stops);
        }
        try {
            if (reply.chat) {
                ObjectNode role = reply.chunk(0, null);
                ((ObjectNode) role.get("choices").get(0).get("delta")).put("role", "assistant").put("content", "");
                event(out, role.toString());
            }
            int completionTokens = 0;
            int open = n;
            long version = 0;
            while (open > 0) {
                long now = s.await(version, KEEP_ALIVE_MILLIS);
                if (now == version && !s.done()) {
                    write(out, ": keep-alive\n\n");
                    continue;
                }
                version = now;
                if (s.failure() != null) {
                    LOG.error("a streamed generation failed", s.failure());
                    event(out, new ApiException(500, "server_error", "generation failed: " + s.failure(), null, null)
                            .toJson(JSON).toString());
                    break;
                }
                for (int i = 0; i < n; i++) {
                    if (ended[i]) {
                        continue;
                    }
                    Generator.Completion c = s.completion(i);
                    if (c != null) {
                        completionTokens += c.tokens().length;
                        piece(out, reply, i, texts[i].finish(reply.text(c)));
                        event(out, reply.chunk(i, finishReason(c.finish())).toString());
                        ended[i] = true;
                        open--;
                    } else {
                        int[] tokens = s.tokens(i);
                        if (tokens.length > seenTokens[i]) {
                            seenTokens[i] = tokens.length;
                            piece(out, reply, i, texts[i].next(b.tokenizer.decode(tokens, true)));
                        }
                    }
                }
            }
            if (includeUsage && open == 0) {
                ObjectNode last = reply.head(true);
                last.putArray("choices");
                last.set("usage", reply.usage(completionTokens));
                event(out, last.toString());
            }
            write(out, "data: [DONE]\n\n");
        } catch (IOException e) {
            s.cancel();
            LOG.debug("a streaming client went away: {}", e.toString());
        } catch (InterruptedException e) {
            s.cancel();
            Thread.currentThread().interrupt();
        }
    }

    /** A chunk with {@code text} of choice {@code i}, unless it is empty. */
    private static void piece(OutputStream out, Reply reply, int i, String text) throws IOException {
        if (!text.isEmpty()) {
            ObjectNode chunk = reply.chunk(i, null);
            JsonNode choice = chunk.get("choices").get(0);
            if (reply.chat) {
                ((ObjectNode) choice.get("delta")).put("content", text);
            } else {
                ((ObjectNode) choice).put("text", text);
            }
            event(out, chunk.toString());
        }
    }

    private static void event(OutputStream out, String data) throws IOException {
        write(out, "data: " + data + "\n\n");
    }

    private static void write(OutputStream out, String s) throws IOException {
        out.write(s.getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static String finishReason(Generator.Finish f) {
        return f == Generator.Finish.LENGTH ? "length" : "stop";
    }

    private static void json(Context ctx, JsonNode body) {
        ctx.contentType("application/json").result(body.toString());
    }

    private static void error(Context ctx, ApiException e) {
        ctx.status(e.status());
        json(ctx, e.toJson(JSON));
    }

    /** What every object of one response shares: its kind, id, time, prompt size and stop strings. */
    private final class Reply {
        final boolean chat;
        final String id;
        final long created;
        final int promptTokens;
        final List<String> stops;

        Reply(boolean chat, String id, long created, int promptTokens, List<String> stops) {
            this.chat = chat;
            this.id = id;
            this.created = created;
            this.promptTokens = promptTokens;
            this.stops = stops;
        }

        ObjectNode head(boolean chunk) {
            return JSON.createObjectNode().put("id", id).put("object", chat ? chunk ? "chat.completion.chunk"
                    : "chat.completion" : "text_completion").put("created", created).put("model", b.modelName);
        }

        /** A stream chunk of choice {@code i} with no text yet, and its finish reason (null while it runs). */
        ObjectNode chunk(int i, String finishReason) {
            ObjectNode root = head(true);
            ObjectNode choice = root.putArray("choices").addObject().put("index", i);
            if (chat) {
                choice.putObject("delta");
            } else {
                choice.put("text", "");
            }
            choice.putNull("logprobs");
            choice.put("finish_reason", finishReason);
            return root;
        }

        ObjectNode usage(int completionTokens) {
            return JSON.createObjectNode().put("prompt_tokens", promptTokens)
                    .put("completion_tokens", completionTokens).put("total_tokens", promptTokens + completionTokens);
        }

        /** A completion's text: its tokens decoded, cut before the first stop string. */
        String text(Generator.Completion c) {
            return Generator.cutAtStop(b.tokenizer.decode(c.tokens(), true), stops);
        }
    }

    /**
     * Settings of an {@link OpenAiServer}: host 127.0.0.1, port 8000, model name "collie", context 2048, no EOS, a
     * guard of its own, 8 requests a batch, 64 admitted at once, no API key.
     */
    public static final class Builder {
        private final LanguageModel model;
        private final Tokenizer tokenizer;
        private String modelName = "collie";
        private int contextLength = 2048;
        private int[] eosIds = new int[0];
        private ReadWriteLock guard;
        private int maxBatch = 8;
        private int maxQueue = 64;
        private String host = "127.0.0.1";
        private int port = 8000;
        private String apiKey;

        private Builder(LanguageModel model, Tokenizer tokenizer) {
            this.model = model;
            this.tokenizer = tokenizer;
        }

        /** The id {@code /v1/models} lists and responses carry (requests may name any model). */
        public Builder modelName(String v) { modelName = v; return this; }
        /** The model's context (max_position_embeddings): prompt + max_tokens beyond it is refused. */
        public Builder contextLength(int v) { contextLength = v; return this; }
        public Builder eosIds(int... v) { eosIds = v.clone(); return this; }
        /** Held for reading around each batch; a trainer holds it for writing during a step. */
        public Builder guard(ReadWriteLock v) { guard = v; return this; }
        public Builder maxBatch(int v) { maxBatch = v; return this; }
        public Builder maxQueue(int v) { maxQueue = v; return this; }
        public Builder host(String v) { host = v; return this; }
        /** 0 picks a free port ({@link #port()} tells which). */
        public Builder port(int v) { port = v; return this; }
        /** Every route but /health then needs {@code Authorization: Bearer KEY}; null for none. */
        public Builder apiKey(String v) { apiKey = v; return this; }

        public OpenAiServer build() {
            if (contextLength < 1) {
                throw new CollieException("the context length must be at least 1, got " + contextLength);
            }
            if (apiKey != null && apiKey.isEmpty()) {
                throw new CollieException("an API key must not be empty");
            }
            return new OpenAiServer(this);
        }
    }
}
