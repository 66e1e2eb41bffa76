package dev.collie.core.io;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.TreeMap;

/**
 * A Hugging Face {@code config.json}, read field by field with errors that name the file and the field (and line
 * and column for malformed JSON), and the helpers to write one as transformers does. Model configs of every family
 * read through it; unknown fields are ignored, duplicate keys refused.
 *
 * <p>A nested object is read through {@link #section}, whose errors name the field with its path
 * ({@code rope_parameters.factor}).
 */
public final class HfConfig {
    private static final JsonMapper JSON = JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

    private final JsonNode root;
    private final String source;
    /** The path of this object's fields in messages: "" at the top, "rope_parameters." in that section. */
    private final String prefix;

    private HfConfig(JsonNode root, String source, String prefix) {
        this.root = root;
        this.source = source;
        this.prefix = prefix;
    }

    /** Reads {@code file}, or the {@code config.json} in directory {@code file}. */
    public static HfConfig load(Path file) {
        Path f = Files.isDirectory(file) ? file.resolve("config.json") : file;
        String text = InputFiles.read(f, "a Hugging Face model directory has a config.json",
                p -> Files.readString(p, StandardCharsets.UTF_8));
        return parse(text, f.toString());
    }

    /** Parses config.json text; {@code source} (a path, usually) prefixes every error message. */
    public static HfConfig parse(String json, String source) {
        String src = source == null ? "config.json" : source;
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            JsonLocation loc = e.getLocation();
            String where = loc == null ? "" : " at line " + loc.getLineNr() + ", column " + loc.getColumnNr();
            throw new CollieException(src + ": malformed JSON" + where + ": " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new CollieException(src + ": expected a JSON object");
        }
        return new HfConfig(root, src, "");
    }

    /** An error about this config: {@code "<source>: <message>"}. */
    public CollieException bad(String message) {
        return new CollieException(source + ": " + message);
    }

    /** The object at {@code key}, null when absent or null; errors in it name {@code key.field}. */
    public HfConfig section(String key) {
        JsonNode v = get(key);
        if (v == null) {
            return null;
        }
        if (!v.isObject()) {
            throw bad(prefix + key + " must be a JSON object or null, got " + v);
        }
        return new HfConfig(v, source, prefix + key + ".");
    }

    /** Refuses a {@code model_type} other than {@code expected} (an absent one is accepted). */
    public void requireModelType(String expected) {
        String type = string("model_type", null);
        if (type != null && !type.equals(expected)) {
            throw bad("model_type is \"" + type + "\", but only \"" + expected + "\" is supported");
        }
    }

    public int requiredInt(String key) {
        return required(key, optInt(key));
    }

    public int intOr(String key, int def) {
        Integer v = optInt(key);
        return v != null ? v : def;
    }

    /** The integer at {@code key}, null when absent or null; a float with an integral value is accepted. */
    public Integer optInt(String key) {
        JsonNode v = get(key);
        if (v == null) {
            return null;
        }
        if (v.isIntegralNumber() && v.canConvertToInt()) {
            return v.intValue();
        }
        if (v.isFloatingPointNumber() && v.doubleValue() == Math.rint(v.doubleValue())
                && Math.abs(v.doubleValue()) <= Integer.MAX_VALUE) {
            return (int) v.doubleValue();
        }
        throw bad(prefix + key + " must be an integer, got " + v);
    }

    public double dbl(String key, double def) {
        Double v = optDbl(key);
        return v != null ? v : def;
    }

    public double requiredDbl(String key) {
        return required(key, optDbl(key));
    }

    /** The number at {@code key}, null when absent or null. */
    public Double optDbl(String key) {
        JsonNode v = get(key);
        if (v == null) {
            return null;
        }
        if (!v.isNumber()) {
            throw bad(prefix + key + " must be a number, got " + v);
        }
        return v.doubleValue();
    }

    public boolean bool(String key, boolean def) {
        JsonNode v = get(key);
        if (v == null) {
            return def;
        }
        if (!v.isBoolean()) {
            throw bad(prefix + key + " must be true or false, got " + v);
        }
        return v.booleanValue();
    }

    public String string(String key, String def) {
        JsonNode v = get(key);
        if (v == null) {
            return def;
        }
        if (!v.isTextual()) {
            throw bad(prefix + key + " must be a string, got " + v);
        }
        return v.asText();
    }

    /** A single token id; -1 (what early LLaMA conversions wrote for "none") and absence give null. */
    public Integer optTokenId(String key) {
        JsonNode v = get(key);
        if (v != null && v.isArray()) {
            throw bad(prefix + key + " must be a single integer, got " + v);
        }
        Integer id = optInt(key);
        return id != null && id < 0 ? null : id;
    }

    /** One token id or a list of them (Llama 3 lists several EOS ids); none when absent. */
    public int[] tokenIds(String key) {
        JsonNode v = get(key);
        if (v == null) {
            return new int[0];
        }
        if (v.isArray()) {
            int[] out = new int[v.size()];
            for (int i = 0; i < out.length; i++) {
                JsonNode e = v.get(i);
                if (!e.isIntegralNumber() || !e.canConvertToInt()) {
                    throw bad(prefix + key + " must be an integer or a list of integers, got " + v);
                }
                out[i] = e.intValue();
            }
            return out;
        }
        Integer id = optInt(key);
        return id == null || id < 0 ? new int[0] : new int[] {id};
    }

    /** Whether {@code key} is in the object at all, even as null (some defaults differ between absent and null). */
    public boolean has(String key) {
        return root.has(key);
    }

    /**
     * The string entries of the object at {@code key} (e.g. {@code auto_map}; an entry of another type, such as a
     * tokenizer's pair of classes, is left out); empty when absent or null.
     */
    public java.util.Map<String, String> stringMap(String key) {
        JsonNode v = get(key);
        if (v == null) {
            return java.util.Map.of();
        }
        if (!v.isObject()) {
            throw bad(prefix + key + " must be a JSON object, got " + v);
        }
        java.util.Map<String, String> out = new TreeMap<>();
        v.fields().forEachRemaining(e -> {
            if (e.getValue().isTextual()) {
                out.put(e.getKey(), e.getValue().asText());
            }
        });
        return out;
    }

    /** The list of strings at {@code key}; empty when absent or null. */
    public List<String> strings(String key) {
        JsonNode v = get(key);
        if (v == null) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        if (v.isArray()) {
            for (JsonNode e : v) {
                if (!e.isTextual()) {
                    out = null;
                    break;
                }
                out.add(e.asText());
            }
        }
        if (out == null || !v.isArray()) {
            throw bad(prefix + key + " must be a list of strings, got " + v);
        }
        return out;
    }

    private <T> T required(String key, T value) {
        if (value == null) {
            throw bad("missing required field " + prefix + key);
        }
        return value;
    }

    private JsonNode get(String key) {
        JsonNode v = root.get(key);
        return v == null || v.isNull() ? null : v;
    }

    // ------------------------------------------------------------------------------------------- writing

    /** An empty object to fill in sorted key order, as transformers writes config.json. */
    public static ObjectNode newObject() {
        return JSON.createObjectNode();
    }

    /** {@code key: id}, or {@code key: null} for none. */
    public static void putId(ObjectNode o, String key, OptionalInt id) {
        if (id.isPresent()) {
            o.put(key, id.getAsInt());
        } else {
            o.putNull(key);
        }
    }

    /** {@code key: id}, {@code key: [ids...]} for several, {@code key: null} for none. */
    public static void putIds(ObjectNode o, String key, int[] ids) {
        if (ids.length == 0) {
            o.putNull(key);
        } else if (ids.length == 1) {
            o.put(key, ids[0]);
        } else {
            var a = o.putArray(key);
            for (int id : ids) {
                a.add(id);
            }
        }
    }

    /** The text of a config.json with its keys sorted, as transformers writes it ({@link #text}). */
    public static String sortedText(ObjectNode o) {
        TreeMap<String, JsonNode> byKey = new TreeMap<>();
        o.fields().forEachRemaining(e -> byKey.put(e.getKey(), e.getValue()));
        ObjectNode sorted = newObject();
        byKey.forEach(sorted::set);
        return text(sorted);
    }

    /** The text of a config.json: two-space indent, {@code "key": value}, one array element per line, a final newline. */
    public static String text(ObjectNode o) {
        try {
            DefaultPrettyPrinter pp = new DefaultPrettyPrinter().withSeparators(
                    Separators.createDefaultInstance().withObjectFieldValueSpacing(Separators.Spacing.AFTER));
            pp.indentArraysWith(DefaultIndenter.SYSTEM_LINEFEED_INSTANCE);
            return JSON.writer(pp).writeValueAsString(o) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
