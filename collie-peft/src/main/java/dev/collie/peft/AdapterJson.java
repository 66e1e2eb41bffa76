package dev.collie.peft;

import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;

import java.io.IOException;
import java.io.InputStream;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;

/** JSON helpers for {@code adapter_config.json}: peft's field templates, reading fields, Python-style output. */
final class AdapterJson {
    static final ObjectMapper MAPPER = new ObjectMapper().enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);

    private AdapterJson() {
    }

    /** The fields peft 0.21 writes for {@code type}, with its defaults (a copy, safe to modify). */
    static ObjectNode template(PeftType type) {
        String res = switch (type) {
            case LORA -> "lora.json";
            case PREFIX_TUNING -> "prefix_tuning.json";
            case PROMPT_TUNING -> "prompt_tuning.json";
            case P_TUNING -> "p_tuning.json";
        };
        try (InputStream in = AdapterJson.class.getResourceAsStream(res)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + res);
            }
            return (ObjectNode) MAPPER.readTree(in);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read resource " + res, e);
        }
    }

    /** {@code node} with keys sorted, indented by two spaces and {@code "key": value} as Python's json.dump writes. */
    static String pythonStyle(ObjectNode node) {
        ObjectNode sorted = sortKeys(node);
        DefaultPrettyPrinter pp = new DefaultPrettyPrinter().withSeparators(
                Separators.createDefaultInstance().withObjectFieldValueSpacing(Separators.Spacing.AFTER));
        pp.indentArraysWith(DefaultIndenter.SYSTEM_LINEFEED_INSTANCE);
        try {
            return MAPPER.writer(pp).writeValueAsString(sorted) + "\n";
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static ObjectNode sortKeys(ObjectNode node) {
        Map<String, JsonNode> fields = new TreeMap<>();
        Iterator<Map.Entry<String, JsonNode>> it = node.fields();
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> e = it.next();
            fields.put(e.getKey(), e.getValue() instanceof ObjectNode o ? sortKeys(o) : e.getValue());
        }
        ObjectNode out = MAPPER.createObjectNode();
        fields.forEach(out::set);
        return out;
    }

    static boolean isNull(JsonNode n, String field) {
        JsonNode v = n.get(field);
        return v == null || v.isNull();
    }

    static int intField(JsonNode n, String field, int dflt) {
        return isNull(n, field) ? dflt : n.get(field).asInt();
    }

    static double doubleField(JsonNode n, String field, double dflt) {
        return isNull(n, field) ? dflt : n.get(field).asDouble();
    }

    static boolean boolField(JsonNode n, String field, boolean dflt) {
        return isNull(n, field) ? dflt : n.get(field).asBoolean();
    }

    static String textField(JsonNode n, String field) {
        return isNull(n, field) ? null : n.get(field).asText();
    }

    static Integer optInt(JsonNode n, String field) {
        return isNull(n, field) ? null : n.get(field).asInt();
    }

    static int required(JsonNode n, String field, String where) {
        if (isNull(n, field)) {
            throw new CollieException(where + ": field " + field + " is missing");
        }
        return n.get(field).asInt();
    }

    /** A number as peft writes it: an integer when integral (lora_alpha 16, not 16.0). */
    static void putNumber(ObjectNode n, String field, double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            n.put(field, (long) v);
        } else {
            n.put(field, v);
        }
    }
}
