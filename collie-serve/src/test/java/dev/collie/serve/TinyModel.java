package dev.collie.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.nn.Tape;
import dev.collie.core.train.ForwardingLanguageModel;
import dev.collie.core.train.LanguageModel;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.HfTokenizer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What the server tests share: a tiny random decoder over the Qwen2 chat fixture's tokenizer (512 byte-level BPE
 * tokens and a chat template; collie-models/src/test/resources/fixtures/chat), 64 positions, and an HTTP client.
 */
final class TinyModel {
    static final Path CHAT_TOKENIZER = Path.of("../collie-models/src/test/resources/fixtures/chat/qwen2-generation");
    static final int CONTEXT = 64;
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    private TinyModel() {
    }

    static DecoderForCausalLM model(HfTokenizer tok) {
        return model(tok, CONTEXT);
    }

    /** The same decoder with {@code context} positions. */
    static DecoderForCausalLM model(HfTokenizer tok, int context) {
        Nd4j.getRandom().setSeed(3);
        DecoderConfig c = DecoderConfig.builder().vocabSize(tok.vocabSize()).hiddenSize(64).numHiddenLayers(2)
                .numAttentionHeads(4).numKeyValueHeads(2).intermediateSize(172).headDim(16)
                .maxPositionEmbeddings(context).ropeTheta(10000.0).rmsNormEps(1e-6).tieWordEmbeddings(false)
                .initializerRange(0.3).build();
        return new DecoderForCausalLM(c, DataType.FLOAT);
    }

    /** A model that waits {@code millis} before each decoding step: a stream that lasts. */
    static LanguageModel slow(LanguageModel m, long millis) {
        return new ForwardingLanguageModel(m) {
            @Override
            public INDArray lastPositionLogits(Tape tape, INDArray inputIds) {
                try {
                    Thread.sleep(millis);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return super.lastPositionLogits(tape, inputIds);
            }
        };
    }

    static String base(OpenAiServer s) {
        return "http://127.0.0.1:" + s.port();
    }

    static HttpResponse<String> get(OpenAiServer s, String path, String key) throws IOException, InterruptedException {
        HttpRequest.Builder r = HttpRequest.newBuilder(URI.create(base(s) + path)).GET();
        if (key != null) {
            r.header("Authorization", "Bearer " + key);
        }
        return HTTP.send(r.build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> post(OpenAiServer s, String path, String key, String body)
            throws IOException, InterruptedException {
        return HTTP.send(postRequest(s, path, key, body), HttpResponse.BodyHandlers.ofString());
    }

    static HttpRequest postRequest(OpenAiServer s, String path, String key, String body) {
        HttpRequest.Builder r = HttpRequest.newBuilder(URI.create(base(s) + path))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body));
        if (key != null) {
            r.header("Authorization", "Bearer " + key);
        }
        return r.build();
    }

    static JsonNode json(String s) throws IOException {
        return JSON.readTree(s);
    }

    /** The JSON of each {@code data:} event of a server-sent-event body, up to and without {@code [DONE]}. */
    static List<JsonNode> events(String body) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        boolean done = false;
        for (String block : body.split("\n\n")) {
            if (!block.startsWith("data: ")) {
                continue;
            }
            String data = block.substring("data: ".length());
            if (data.equals("[DONE]")) {
                done = true;
                continue;
            }
            if (done) {
                throw new AssertionError("an event after [DONE]: " + data);
            }
            out.add(JSON.readTree(data));
        }
        if (!done) {
            throw new AssertionError("no data: [DONE] in " + body);
        }
        return out;
    }
}
