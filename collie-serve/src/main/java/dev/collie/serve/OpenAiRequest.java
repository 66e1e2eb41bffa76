package dev.collie.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.LongNode;
import dev.collie.core.data.ChatMessage;

import java.util.ArrayList;
import java.util.List;

/**
 * The fields of a {@code /v1/completions} or {@code /v1/chat/completions} body that the server acts on, read and
 * checked: a known field of the wrong type or out of range is an {@link ApiException} naming it; unknown fields are
 * ignored (OpenAI's clients send many).
 *
 * @param prompts           the completion prompts (one choice each); empty for a chat
 * @param messages          the chat's messages; empty for a completion
 * @param maxTokens         {@code max_tokens} (chat: or {@code max_completion_tokens}); null when not given
 * @param temperature       0 = greedy; OpenAI's default 1
 * @param topP              nucleus sampling, in (0, 1]
 * @param topK              extension: sample among the k most probable tokens; 0 (or -1, as vLLM) = all
 * @param repetitionPenalty extension: CTRL's penalty, 1 = none
 * @param stop              stop strings ({@code stop}: a string or a list)
 * @param seed              sampling seed; null when not given
 * @param stream            answer as server-sent events
 * @param includeUsage      {@code stream_options.include_usage}: a last chunk with the usage
 */
public record OpenAiRequest(List<String> prompts, List<ChatMessage> messages, Integer maxTokens, double temperature,
                            double topP, int topK, double repetitionPenalty, List<String> stop, Long seed,
                            boolean stream, boolean includeUsage) {
    public OpenAiRequest {
        prompts = List.copyOf(prompts);
        messages = List.copyOf(messages);
        stop = List.copyOf(stop);
    }

    /** Reads a request body; {@code chat} for {@code /v1/chat/completions}. */
    public static OpenAiRequest parse(JsonNode body, boolean chat) {
        if (body == null || !body.isObject()) {
            throw ApiException.invalid("The request body must be a JSON object.", null);
        }
        Integer n = integer(body, "n");
        if (n != null && n != 1) {
            throw ApiException.invalid("Only n=1 is supported, got " + n + ".", "n");
        }
        Integer maxTokens = integer(body, "max_tokens");
        if (maxTokens == null && chat) {
            maxTokens = integer(body, "max_completion_tokens");
        }
        if (maxTokens != null && maxTokens < 1) {
            throw ApiException.invalid("max_tokens must be at least 1, got " + maxTokens + ".", "max_tokens");
        }
        double temperature = number(body, "temperature", 1.0);
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw ApiException.invalid("temperature must be >= 0 (0 = greedy), got " + temperature + ".",
                    "temperature");
        }
        double topP = number(body, "top_p", 1.0);
        if (!(topP > 0 && topP <= 1)) {
            throw ApiException.invalid("top_p must be in (0, 1], got " + topP + ".", "top_p");
        }
        Integer topK = integer(body, "top_k");
        if (topK != null && topK < -1) {
            throw ApiException.invalid("top_k must be >= 0 (0 or -1 = no limit), got " + topK + ".", "top_k");
        }
        double penalty = number(body, "repetition_penalty", 1.0);
        if (!(penalty > 0) || Double.isInfinite(penalty)) {
            throw ApiException.invalid("repetition_penalty must be > 0 (1 = none), got " + penalty + ".",
                    "repetition_penalty");
        }
        Long seed = body.hasNonNull("seed") ? integralOf(body, "seed").longValue() : null;
        boolean stream = bool(body, "stream");
        JsonNode options = body.get("stream_options");
        if (options != null && !options.isNull() && !options.isObject()) {
            throw wrongType("stream_options", "an object", options);
        }
        boolean usage = options != null && options.isObject() && bool(options, "include_usage");
        return new OpenAiRequest(chat ? List.of() : prompts(body), chat ? messages(body) : List.of(), maxTokens,
                temperature, topP, topK == null || topK < 0 ? 0 : topK, penalty, stops(body), seed, stream, usage);
    }

    private static List<String> prompts(JsonNode body) {
        JsonNode p = body.get("prompt");
        if (p == null || p.isNull()) {
            throw ApiException.invalid("Missing required parameter: 'prompt'.", "prompt");
        }
        List<String> out = strings(p, "prompt");
        if (out.isEmpty()) {
            throw ApiException.invalid("'prompt' must not be an empty list.", "prompt");
        }
        return out;
    }

    private static List<ChatMessage> messages(JsonNode body) {
        JsonNode m = body.get("messages");
        if (m == null || m.isNull()) {
            throw ApiException.invalid("Missing required parameter: 'messages'.", "messages");
        }
        if (!m.isArray()) {
            throw wrongType("messages", "an array", m);
        }
        if (m.isEmpty()) {
            throw ApiException.invalid("'messages' must not be empty: give at least one message.", "messages");
        }
        List<ChatMessage> out = new ArrayList<>();
        for (int i = 0; i < m.size(); i++) {
            String where = "messages[" + i + "]";
            JsonNode msg = m.get(i);
            if (!msg.isObject()) {
                throw wrongType(where, "an object", msg);
            }
            JsonNode role = msg.get("role");
            if (role == null || !role.isTextual()) {
                throw role == null ? ApiException.invalid("Missing required parameter: '" + where + ".role'.",
                        where + ".role") : wrongType(where + ".role", "a string", role);
            }
            out.add(new ChatMessage(role.asText(), content(msg.get("content"), where + ".content")));
        }
        return out;
    }

    /** A message's content: a string, null (an assistant turn of tool calls), or a list of {"type": "text"} parts. */
    private static String content(JsonNode c, String where) {
        if (c == null || c.isNull()) {
            return "";
        }
        if (c.isTextual()) {
            return c.asText();
        }
        if (!c.isArray()) {
            throw wrongType(where, "a string or an array of content parts", c);
        }
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < c.size(); i++) {
            JsonNode part = c.get(i);
            JsonNode t = part.get("text");
            if (!part.isObject() || !"text".equals(part.path("type").asText()) || t == null || !t.isTextual()) {
                throw ApiException.invalid("Only text content parts ({\"type\": \"text\", \"text\": ...}) are"
                        + " supported; " + where + "[" + i + "] is not one.", where + "[" + i + "]");
            }
            text.append(t.asText());
        }
        return text.toString();
    }

    private static List<String> stops(JsonNode body) {
        JsonNode s = body.get("stop");
        if (s == null || s.isNull()) {
            return List.of();
        }
        List<String> out = strings(s, "stop");
        for (String x : out) {
            if (x.isEmpty()) {
                throw ApiException.invalid("A stop string must not be empty.", "stop");
            }
        }
        return out;
    }

    /** A string, or an array of strings. */
    private static List<String> strings(JsonNode v, String name) {
        if (v.isTextual()) {
            return List.of(v.asText());
        }
        if (!v.isArray()) {
            throw wrongType(name, "a string or an array of strings", v);
        }
        List<String> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isTextual()) {
                throw wrongType(name, "a string or an array of strings", v);
            }
            out.add(e.asText());
        }
        return out;
    }

    private static Integer integer(JsonNode body, String name) {
        if (!body.hasNonNull(name)) {
            return null;
        }
        JsonNode v = integralOf(body, name);
        if (!v.canConvertToInt()) {
            throw ApiException.invalid("'" + name + "' is out of range: " + v + ".", name);
        }
        return v.intValue();
    }

    /** An integer field; a float with no fraction (e.g. 16.0) counts as one, as OpenAI's server takes it. */
    private static JsonNode integralOf(JsonNode body, String name) {
        JsonNode v = body.get(name);
        if (v.isIntegralNumber()) {
            return v;
        }
        if (v.isNumber() && v.doubleValue() == Math.rint(v.doubleValue()) && !Double.isInfinite(v.doubleValue())) {
            return LongNode.valueOf(v.longValue());
        }
        throw wrongType(name, "an integer", v);
    }

    private static double number(JsonNode body, String name, double absent) {
        if (!body.hasNonNull(name)) {
            return absent;
        }
        JsonNode v = body.get(name);
        if (!v.isNumber()) {
            throw wrongType(name, "a number", v);
        }
        return v.doubleValue();
    }

    private static boolean bool(JsonNode body, String name) {
        if (!body.hasNonNull(name)) {
            return false;
        }
        JsonNode v = body.get(name);
        if (!v.isBoolean()) {
            throw wrongType(name, "a boolean", v);
        }
        return v.booleanValue();
    }

    private static ApiException wrongType(String name, String expected, JsonNode got) {
        return ApiException.invalid("Invalid type for '" + name + "': expected " + expected + ", but got "
                + kind(got) + " instead.", name);
    }

    private static String kind(JsonNode v) {
        return switch (v.getNodeType()) {
            case STRING -> "a string";
            case NUMBER -> v.isIntegralNumber() ? "an integer" : "a decimal";
            case BOOLEAN -> "a boolean";
            case ARRAY -> "an array";
            case OBJECT -> "an object";
            default -> "null";
        };
    }
}
