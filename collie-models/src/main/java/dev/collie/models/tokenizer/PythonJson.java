package dev.collie.models.tokenizer;

import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Python's {@code json.dumps}, as Hugging Face's {@code tojson} filter calls it ({@code ensure_ascii=False} unless
 * asked): {@code ", "} and {@code ": "} between items (Jinjava's own tojson writes them without spaces), indented
 * output with {@code ","}, floats as Python's {@code repr}, keys in their order unless {@code sortKeys}.
 */
final class PythonJson {
    private final boolean ensureAscii;
    private final String indent;
    private final String itemSeparator;
    private final String keySeparator;
    private final boolean sortKeys;
    private final StringBuilder out = new StringBuilder();

    private PythonJson(boolean ensureAscii, String indent, String itemSeparator, String keySeparator,
                       boolean sortKeys) {
        this.ensureAscii = ensureAscii;
        this.indent = indent;
        this.itemSeparator = itemSeparator;
        this.keySeparator = keySeparator;
        this.sortKeys = sortKeys;
    }

    /**
     * {@code json.dumps(value, ensure_ascii=ensureAscii, indent=indent, separators=separators, sort_keys=sortKeys)}.
     *
     * @param indent     null: one line; a number of spaces; or the indent string itself
     * @param separators null, or the (item, key) separators
     * @throws IllegalArgumentException for a value JSON cannot hold ("Object of type ... is not JSON serializable")
     */
    static String dumps(Object value, boolean ensureAscii, Object indent, List<?> separators, boolean sortKeys) {
        String indentText = indent == null ? null
                : indent instanceof Number n ? " ".repeat(Math.max(0, n.intValue())) : indent.toString();
        String item = indentText == null ? ", " : ",";
        String key = ": ";
        if (separators != null) {
            if (separators.size() != 2) {
                throw new IllegalArgumentException("separators must be an (item_separator, key_separator) pair");
            }
            item = String.valueOf(separators.get(0));
            key = String.valueOf(separators.get(1));
        }
        PythonJson json = new PythonJson(ensureAscii, indentText, item, key, sortKeys);
        json.write(value, 0);
        return json.out.toString();
    }

    private void write(Object v, int level) {
        if (v == null) {
            out.append("null");
        } else if (v instanceof Boolean b) {
            out.append(b ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            out.append(floatRepr(((Number) v).doubleValue()));
        } else if (v instanceof Number n) {
            out.append(n instanceof BigDecimal d ? floatRepr(d.doubleValue()) : n.toString());
        } else if (v instanceof CharSequence s) {
            string(s.toString());
        } else if (v instanceof Map<?, ?> m) {
            object(m, level);
        } else if (v instanceof Iterable<?> it) {
            List<Object> items = new ArrayList<>();
            it.forEach(items::add);
            array(items, level);
        } else if (v.getClass().isArray()) {
            List<Object> items = new ArrayList<>();
            for (int i = 0; i < Array.getLength(v); i++) {
                items.add(Array.get(v, i));
            }
            array(items, level);
        } else {
            throw new IllegalArgumentException("Object of type " + v.getClass().getSimpleName()
                    + " is not JSON serializable");
        }
    }

    private void array(List<Object> items, int level) {
        if (items.isEmpty()) {
            out.append("[]");
            return;
        }
        out.append('[');
        for (int i = 0; i < items.size(); i++) {
            separate(i, level + 1);
            write(items.get(i), level + 1);
        }
        close(level, ']');
    }

    private void object(Map<?, ?> map, int level) {
        if (map.isEmpty()) {
            out.append("{}");
            return;
        }
        List<Map.Entry<String, Object>> entries = new ArrayList<>();
        for (Map.Entry<?, ?> e : map.entrySet()) {
            entries.add(Map.entry(key(e.getKey()), e.getValue() == null ? NULL : e.getValue()));
        }
        if (sortKeys) {
            entries.sort((a, b) -> compareCodePoints(a.getKey(), b.getKey()));
        }
        out.append('{');
        for (int i = 0; i < entries.size(); i++) {
            separate(i, level + 1);
            string(entries.get(i).getKey());
            out.append(keySeparator);
            Object value = entries.get(i).getValue();
            write(value == NULL ? null : value, level + 1);
        }
        close(level, '}');
    }

    /** Map.entry refuses null values. */
    private static final Object NULL = new Object();

    private void separate(int index, int level) {
        if (index > 0) {
            out.append(itemSeparator);
        }
        if (indent != null) {
            out.append('\n').append(indent.repeat(level));
        }
    }

    private void close(int level, char bracket) {
        if (indent != null) {
            out.append('\n').append(indent.repeat(level));
        }
        out.append(bracket);
    }

    /** Python turns str, int, float, bool and None keys into strings, and refuses others. */
    private static String key(Object k) {
        if (k instanceof CharSequence s) {
            return s.toString();
        }
        if (k == null) {
            return "null";
        }
        if (k instanceof Boolean b) {
            return b ? "true" : "false";
        }
        if (k instanceof Double || k instanceof Float) {
            return floatRepr(((Number) k).doubleValue());
        }
        if (k instanceof Long || k instanceof Integer || k instanceof Short || k instanceof Byte
                || k instanceof BigInteger) {
            return k.toString();
        }
        throw new IllegalArgumentException("keys must be str, int, float, bool or None, not "
                + k.getClass().getSimpleName());
    }

    private static int compareCodePoints(String a, String b) {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i);
            int cb = b.codePointAt(j);
            if (ca != cb) {
                return Integer.compare(ca, cb);
            }
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }

    private void string(String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20 || ensureAscii && c > 0x7e) {
                        out.append(String.format("\\u%04x", (int) c)); // a non-BMP character: its two surrogates
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }

    /** Python's {@code repr(float)}: the shortest digits, positional for exponents -4 to 15, else {@code 1e+16}. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return 1 / d < 0 ? "-0.0" : "0.0";
        }
        BigDecimal x = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
        String digits = x.unscaledValue().toString();
        int exponent = digits.length() - 1 - x.scale(); // d = digits[0].digits[1:] × 10^exponent
        String sign = d < 0 ? "-" : "";
        if (exponent >= -4 && exponent < 16) {
            String plain = x.toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        String exp = String.format("%02d", Math.abs(exponent));
        return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + exp;
    }
}
