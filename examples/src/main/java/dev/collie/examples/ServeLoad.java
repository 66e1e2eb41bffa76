package dev.collie.examples;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A load test of a running {@code collie serve}: {@code --clients} streaming chat clients, each sending requests back
 * to back for {@code --seconds}, after one client alone for as long.
 * <pre>
 *   java -cp examples/target/collie.jar dev.collie.examples.ServeLoad --url http://127.0.0.1:8000 \
 *       [--clients 32] [--seconds 60] [--max-tokens 64] [--api-key KEY]
 * </pre>
 * A request counts as completed only with a 200 and a stream that ends in {@code [DONE]} with its usage; anything
 * else (a 429, an error event, a broken stream) is a failure. Time to first token runs from sending the request to
 * the first chunk with text; a request's tokens/s is its completion tokens over its whole time; the aggregate is
 * every completed request's tokens over the phase's wall time (the requests in flight at the deadline finish).
 */
public final class ServeLoad {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String[] PROMPTS = {"Tell me about the sea.", "Who was Ishmael?", "Write a short poem.",
        "What is a whale?", "Describe a ship in a storm.", "Say something about the weather."};

    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();
    private final String url;
    private final String apiKey;
    private final int maxTokens;
    private String model = "collie";

    private ServeLoad(String url, String apiKey, int maxTokens) {
        this.url = url.replaceAll("/+$", "");
        this.apiKey = apiKey;
        this.maxTokens = maxTokens;
    }

    /** One request's outcome: times in seconds from its start; tokens from its usage. */
    private record Outcome(boolean ok, double firstToken, double total, int tokens, String error) {
    }

    /** What one phase measured. */
    private record Phase(int clients, double wall, List<Outcome> outcomes) {
        List<Outcome> completed() {
            return outcomes.stream().filter(Outcome::ok).toList();
        }
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> o = new java.util.HashMap<>(Map.of("--url", "http://127.0.0.1:8000", "--clients", "32",
                "--seconds", "60", "--max-tokens", "64"));
        for (int i = 0; i < args.length; i += 2) {
            if (!o.containsKey(args[i]) && !args[i].equals("--api-key") || i + 1 >= args.length) {
                System.err.println("usage: ServeLoad [--url http://127.0.0.1:8000] [--clients 32] [--seconds 60]"
                        + " [--max-tokens 64] [--api-key KEY]");
                System.exit(2);
            }
            o.put(args[i], args[i + 1]);
        }
        String key = o.getOrDefault("--api-key", System.getenv("COLLIE_API_KEY"));
        ServeLoad load = new ServeLoad(o.get("--url"), key, Integer.parseInt(o.get("--max-tokens")));
        int clients = Integer.parseInt(o.get("--clients"));
        double seconds = Double.parseDouble(o.get("--seconds"));
        load.model = load.modelName();
        System.out.printf(Locale.ROOT, "model %s at %s; max_tokens %d, temperature 0.8; %.0f s a phase%n",
                load.model, load.url, load.maxTokens, seconds);
        Outcome warmUp = load.chat(0, 99_999);
        System.out.printf(Locale.ROOT, "warm-up request (not counted): %s, %.2f s; load average %s%n",
                warmUp.ok() ? "ok" : warmUp.error(), warmUp.total(), loadAverage());
        System.out.println("| clients | completed | failed | TTFT p50 | TTFT p99 | tokens/s per request (p50) |"
                + " aggregate tokens/s |");
        System.out.println("|---:|---:|---:|---:|---:|---:|---:|");
        for (int n : clients == 1 ? new int[] {1} : new int[] {1, clients}) {
            Phase p = load.run(n, seconds);
            System.out.println(row(p));
            p.outcomes().stream().filter(r -> !r.ok()).map(Outcome::error).distinct().limit(5)
                    .forEach(e -> System.out.println("  failure: " + e));
        }
        System.out.println("load average after: " + loadAverage());
    }

    /** This machine's 1, 5 and 15 minute load averages (Linux), or "?". */
    private static String loadAverage() {
        try {
            String[] f = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg")).split(" ");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException | RuntimeException e) {
            return "?";
        }
    }

    private String modelName() throws IOException, InterruptedException {
        HttpResponse<String> r = http.send(request("/v1/models").GET().build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) {
            throw new IllegalStateException("GET /v1/models: " + r.statusCode() + " " + r.body());
        }
        return JSON.readTree(r.body()).at("/data/0/id").asText();
    }

    private HttpRequest.Builder request(String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofMinutes(10));
        if (apiKey != null) {
            b.header("Authorization", "Bearer " + apiKey);
        }
        return b;
    }

    /** {@code clients} threads sending requests back to back until {@code seconds} have passed. */
    private Phase run(int clients, double seconds) throws InterruptedException {
        List<Outcome> outcomes = Collections.synchronizedList(new ArrayList<>());
        long start = System.nanoTime();
        long deadline = start + (long) (seconds * 1e9);
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            int client = c;
            Thread t = new Thread(() -> {
                for (int k = 0; System.nanoTime() < deadline; k++) {
                    outcomes.add(chat(client, k));
                }
            }, "serve-load-" + c);
            t.start();
            threads.add(t);
        }
        for (Thread t : threads) {
            t.join();
        }
        return new Phase(clients, (System.nanoTime() - start) / 1e9, new ArrayList<>(outcomes));
    }

    /** One streamed chat, read to its end. */
    private Outcome chat(int client, int k) {
        ObjectNode body = JSON.createObjectNode().put("model", model).put("max_tokens", maxTokens)
                .put("temperature", 0.8).put("seed", client * 100_000L + k).put("stream", true);
        body.putArray("messages").addObject().put("role", "user")
                .put("content", PROMPTS[Math.floorMod(client + k, PROMPTS.length)]);
        body.putObject("stream_options").put("include_usage", true);
        long t0 = System.nanoTime();
        double first = -1;
        try {
            HttpResponse<InputStream> r = http.send(request("/v1/chat/completions")
                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
                            body.toString())).build(), HttpResponse.BodyHandlers.ofInputStream());
            try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
                if (r.statusCode() != 200) {
                    return failed(t0, "HTTP " + r.statusCode());
                }
                int tokens = -1;
                for (String line = in.readLine(); line != null; line = in.readLine()) {
                    if (!line.startsWith("data: ")) {
                        continue;
                    }
                    String data = line.substring(6);
                    if (data.equals("[DONE]")) {
                        return tokens < 0 ? failed(t0, "no usage before [DONE]")
                                : new Outcome(true, first, (System.nanoTime() - t0) / 1e9, tokens, null);
                    }
                    JsonNode chunk = JSON.readTree(data);
                    if (chunk.has("error")) {
                        return failed(t0, "error event: " + chunk.at("/error/message").asText());
                    }
                    if (first < 0 && !chunk.at("/choices/0/delta/content").asText("").isEmpty()) {
                        first = (System.nanoTime() - t0) / 1e9;
                    }
                    if (chunk.hasNonNull("usage")) {
                        tokens = chunk.at("/usage/completion_tokens").asInt();
                    }
                }
                return failed(t0, "the stream ended before [DONE]");
            }
        } catch (IOException e) {
            return failed(t0, "broken stream: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return failed(t0, "interrupted");
        }
    }

    private static Outcome failed(long t0, String why) {
        return new Outcome(false, -1, (System.nanoTime() - t0) / 1e9, 0, why);
    }

    /** The phase's line of the table. */
    private static String row(Phase p) {
        List<Outcome> done = p.completed();
        List<Double> ttft = new ArrayList<>();
        List<Double> rate = new ArrayList<>();
        long tokens = 0;
        for (Outcome r : done) {
            if (r.firstToken() >= 0) {
                ttft.add(r.firstToken());
            }
            rate.add(r.tokens() / r.total());
            tokens += r.tokens();
        }
        return String.format(Locale.ROOT, "| %d | %d | %d | %.2f s | %.2f s | %.1f | %.1f |", p.clients(),
                done.size(), p.outcomes().size() - done.size(), percentile(ttft, 50), percentile(ttft, 99),
                percentile(rate, 50), tokens / p.wall());
    }

    /** The nearest-rank percentile; NaN of nothing. */
    private static double percentile(List<Double> values, double pct) {
        if (values.isEmpty()) {
            return Double.NaN;
        }
        List<Double> sorted = new ArrayList<>(values);
        Collections.sort(sorted);
        return sorted.get(Math.max(0, (int) Math.ceil(pct / 100 * sorted.size()) - 1));
    }
}
