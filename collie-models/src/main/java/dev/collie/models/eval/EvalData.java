package dev.collie.models.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.CollieException;
import dev.collie.core.data.Utf8Lines;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads evaluation examples from JSONL, one JSON object a line (blank lines skipped):
 * <ul>
 *   <li>perplexity: {@code {"text": "..."}} or {@code {"input": "...", "output": "..."}};</li>
 *   <li>generation: {@code {"input": "...", "output": "..."}}, the output a text or a list of reference texts;</li>
 *   <li>classification: {@code {"input": "...", "options": ["...", ...], "target": i}}, {@code i} the index of the
 *       right option.</li>
 * </ul>
 * A malformed line is an error naming {@code file:line} and the field.
 */
public final class EvalData {
    private static final ObjectMapper JSON = new ObjectMapper();

    private EvalData() {
    }

    /**
     * The examples of {@code file} in the form {@code task} reads.
     *
     * @throws CollieException for a missing or empty file or a malformed line, naming {@code file:line}
     */
    public static List<EvalExample> read(Path file, EvalTask task) {
        List<EvalExample> out = new ArrayList<>();
        try (InputStream in = Files.newInputStream(file)) {
            Utf8Lines.read(in, file, (line, lineNo) -> {
                if (!line.isBlank()) {
                    out.add(parse(line, task, file + ":" + lineNo));
                }
            });
        } catch (NoSuchFileException e) {
            throw new CollieException("no such evaluation data file: " + file);
        } catch (IOException e) {
            throw new CollieException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (out.isEmpty()) {
            throw new CollieException(file + ": the evaluation data file holds no examples");
        }
        return out;
    }

    /** One line's example; {@code where} ({@code file:line}) starts every error message. */
    static EvalExample parse(String line, EvalTask task, String where) {
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            String msg = e.getOriginalMessage();
            throw new CollieException(where + ": not valid JSON: " + (msg == null ? "" : msg.lines().findFirst()
                    .orElse("")));
        }
        if (node == null || !node.isObject()) {
            throw new CollieException(where + ": expected a JSON object, " + forms(task));
        }
        if (task.classification()) {
            String input = text(node, "input", where, task);
            JsonNode opts = node.get("options");
            if (opts == null || !opts.isArray() || opts.isEmpty()) {
                throw new CollieException(where + ": \"options\" must be a non-empty list of texts, " + forms(task));
            }
            List<String> options = new ArrayList<>();
            for (int i = 0; i < opts.size(); i++) {
                if (!opts.get(i).isTextual()) {
                    throw new CollieException(where + ": \"options\"[" + i + "] must be a text, got "
                            + opts.get(i).getNodeType().name().toLowerCase());
                }
                options.add(opts.get(i).asText());
            }
            JsonNode t = node.get("target");
            if (t == null || !t.canConvertToInt() || !t.isIntegralNumber() || t.asInt() < 0
                    || t.asInt() >= options.size()) {
                throw new CollieException(where + ": \"target\" must be the index of the right option, an integer in"
                        + " [0, " + options.size() + "), got " + (t == null ? "none" : t.toString()));
            }
            return new EvalExample(input, List.of(), options, t.asInt(), where);
        }
        if (task == EvalTask.PPL && node.has("text")) {
            return new EvalExample("", List.of(text(node, "text", where, task)), List.of(), -1, where);
        }
        String input = text(node, "input", where, task);
        JsonNode o = node.get("output");
        List<String> outputs = new ArrayList<>();
        if (o != null && o.isArray() && task == EvalTask.GENERATION) {
            for (JsonNode r : o) {
                if (!r.isTextual()) {
                    throw new CollieException(where + ": \"output\" must be a text or a list of texts");
                }
                outputs.add(r.asText());
            }
        } else {
            outputs.add(text(node, "output", where, task));
        }
        if (outputs.isEmpty()) {
            throw new CollieException(where + ": \"output\" holds no reference text");
        }
        return new EvalExample(input, outputs, List.of(), -1, where);
    }

    private static String text(JsonNode node, String field, String where, EvalTask task) {
        JsonNode v = node.get(field);
        if (v == null || !v.isTextual()) {
            throw new CollieException(where + ": \"" + field + "\" must be a text" + (v == null ? " (missing)" : "")
                    + ", " + forms(task));
        }
        return v.asText();
    }

    private static String forms(EvalTask task) {
        return switch (task) {
            case PPL -> "a line of perplexity data is {\"text\": ...} or {\"input\": ..., \"output\": ...}";
            case GENERATION -> "a line of generation data is {\"input\": ..., \"output\": ...}";
            case CLASSIFICATION_HARNESS, CLASSIFICATION_HELM ->
                    "a line of classification data is {\"input\": ..., \"options\": [...], \"target\": i}";
        };
    }
}
