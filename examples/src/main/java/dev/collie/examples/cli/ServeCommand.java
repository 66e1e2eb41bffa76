package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.HfTokenizer;
import dev.collie.serve.OpenAiServer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code collie serve}: an OpenAI-compatible HTTP server over a model ({@link OpenAiServer}) until stopped. */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Serve a model over HTTP with OpenAI's API: POST /v1/completions, POST /v1/chat/completions"
                + " (\"stream\": true for server-sent events), GET /v1/models, GET /health, and a chat page at /.",
            "Requests are queued and decoded together, up to --max-batch at a time; beyond --max-queue waiting or"
                + " running, a request gets 429. Ctrl-C stops the server.",
            "The first line on standard output is 'serving NAME at http://HOST:PORT/v1'; the second names the chat"
                + " page."})
final class ServeCommand implements Callable<Integer> {
    @Spec CommandSpec spec;
    @Option(names = "--model", paramLabel = "DIR", required = true, description = "Hugging Face model directory")
    Path model;
    @Option(names = "--tokenizer", paramLabel = "DIR",
            description = "tokenizer.json or its directory (default: the model directory)")
    Path tokenizerPath;
    @CommandLine.Mixin AdapterOptions adapter;
    @Option(names = "--host", paramLabel = "HOST", defaultValue = "127.0.0.1",
            description = "address to listen on (default ${DEFAULT-VALUE}: this machine only; 0.0.0.0 for all)")
    String host;
    @Option(names = "--port", paramLabel = "PORT", defaultValue = "8000",
            description = "port to listen on (default ${DEFAULT-VALUE}; 0 picks a free one)")
    int port;
    @Option(names = "--api-key", paramLabel = "KEY", description = "require 'Authorization: Bearer KEY' on every"
            + " route but /health (default: the COLLIE_API_KEY variable if set, else no key)")
    String apiKey;
    @Option(names = "--max-batch", paramLabel = "N", defaultValue = "8",
            description = "most requests decoded together (default ${DEFAULT-VALUE})")
    int maxBatch;
    @Option(names = "--max-queue", paramLabel = "N", defaultValue = "64",
            description = "most requests waiting or running; more get 429 (default ${DEFAULT-VALUE})")
    int maxQueue;
    @Option(names = "--served-model-name", paramLabel = "NAME",
            description = "the model's id in /v1/models and responses (default: the model directory's name)")
    String name;

    @Override
    public Integer call() {
        CliSupport.atLeast("--max-batch", maxBatch, 1);
        CliSupport.atLeast("--max-queue", maxQueue, 1);
        if (port < 0 || port > 65535) {
            throw new CollieException("--port " + port + ": must be in 0..65535");
        }
        String key = apiKey != null ? apiKey : System.getenv("COLLIE_API_KEY");
        if (key != null && key.isBlank()) {
            throw new CollieException("--api-key: the key must not be empty");
        }
        DecoderForCausalLM net = CliSupport.loadModel(model);
        HfTokenizer tok = CliSupport.requiredTokenizer(tokenizerPath, model, net.config(), "serve");
        String served = name != null ? name : model.toAbsolutePath().normalize().getFileName().toString();
        OpenAiServer server = OpenAiServer.builder(adapter.apply(net), tok).modelName(served)
                .contextLength(net.config().maxPositionEmbeddings()).eosIds(CliSupport.eosIds(net.config(), tok))
                .maxBatch(maxBatch).maxQueue(maxQueue).host(host).port(port).apiKey(key).build();
        try {
            server.start();
        } catch (RuntimeException e) {
            server.close();
            tok.close();
            throw new CollieException("serve: cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            server.close();
            stopped.countDown();
        }, "collie-serve-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        PrintWriter out = spec.commandLine().getOut();
        out.println("serving " + served + " at http://" + host + ":" + server.port() + "/v1");
        out.println("chat page: http://" + host + ":" + server.port() + "/");
        out.flush();
        boolean interrupted = false;
        try {
            stopped.await();    // until Ctrl-C or SIGTERM, or an interrupt of this thread (a program that embeds it)
        } catch (InterruptedException e) {
            interrupted = true;
        }
        if (stopped.getCount() > 0) {
            Runtime.getRuntime().removeShutdownHook(hook);
            server.close();     // not interrupted: Jetty's graceful stop waits
            tok.close();
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        return 0;
    }
}
