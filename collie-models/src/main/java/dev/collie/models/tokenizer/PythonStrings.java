package dev.collie.models.tokenizer;

import com.hubspot.jinjava.el.ext.NamedParameter;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Python's {@code str} methods as chat templates call them ({@code content.strip()}, {@code .startswith(...)},
 * {@code .split(',')}), with Python's results: Java's {@code strip()} and {@code split(regex)} differ (other white
 * space, trailing empty fields dropped). {@link Methods} puts them in front of Jinjava's own method lookup.
 *
 * <p>White space is Python's {@code str.isspace()}: it includes the non-breaking and ideographic spaces and
 * {@code \x1c}-{@code \x1f}, not the other control characters. Indices are code points, as in Python.
 */
final class PythonStrings {
    private PythonStrings() {
    }

    /** Python's {@code str.isspace()} for one code point. */
    static boolean isSpace(int c) {
        return c == ' ' || c >= 0x09 && c <= 0x0d || c >= 0x1c && c <= 0x1f || c == 0x85 || c == 0xa0
                || c == 0x1680 || c >= 0x2000 && c <= 0x200a || c == 0x2028 || c == 0x2029 || c == 0x202f
                || c == 0x205f || c == 0x3000;
    }

    /** Whether {@code s[from, to)} is all white space (all Python white space is in the BMP). */
    static boolean isSpace(String s, int from, int to) {
        for (int i = from; i < to; i++) {
            if (!isSpace(s.charAt(i))) {
                return false;
            }
        }
        return true;
    }

    /** {@code s.strip(chars)}; {@code chars == null}: white space. */
    static String strip(String s, String chars) {
        return rstrip(lstrip(s, chars), chars);
    }

    /** {@code s.lstrip(chars)}; {@code chars == null}: white space. */
    static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length()) {
            int c = s.codePointAt(i);
            if (!stripped(c, chars)) {
                break;
            }
            i += Character.charCount(c);
        }
        return s.substring(i);
    }

    /** {@code s.rstrip(chars)}; {@code chars == null}: white space. */
    static String rstrip(String s, String chars) {
        int i = s.length();
        while (i > 0) {
            int c = s.codePointBefore(i);
            if (!stripped(c, chars)) {
                break;
            }
            i -= Character.charCount(c);
        }
        return s.substring(0, i);
    }

    private static boolean stripped(int c, String chars) {
        return chars == null ? isSpace(c) : chars.indexOf(Character.toString(c)) >= 0;
    }

    /** {@code s.split(sep, maxsplit)}; {@code sep == null}: runs of white space, none empty; maxsplit < 0: all. */
    static List<String> split(String s, String sep, long maxsplit) {
        List<String> out = new ArrayList<>();
        long left = maxsplit < 0 ? Long.MAX_VALUE : maxsplit;
        if (sep == null) {
            int i = 0;
            while (left-- > 0) {
                i = skipSpace(s, i);
                if (i == s.length()) {
                    return out;
                }
                int j = i;
                while (j < s.length() && !isSpace(s.charAt(j))) {
                    j++;
                }
                out.add(s.substring(i, j));
                i = j;
            }
            i = skipSpace(s, i);
            if (i < s.length()) {
                out.add(s.substring(i));
            }
            return out;
        }
        if (sep.isEmpty()) {
            throw new IllegalArgumentException("empty separator");
        }
        int i = 0;
        for (int j = s.indexOf(sep); j >= 0 && left-- > 0; j = s.indexOf(sep, i)) {
            out.add(s.substring(i, j));
            i = j + sep.length();
        }
        out.add(s.substring(i));
        return out;
    }

    private static int skipSpace(String s, int i) {
        while (i < s.length() && isSpace(s.charAt(i))) {
            i++;
        }
        return i;
    }

    /** {@code s.replace(old, new, count)}; count < 0: all; an empty {@code old} inserts between characters. */
    static String replace(String s, String old, String replacement, long count) {
        long left = count < 0 ? Long.MAX_VALUE : count;
        StringBuilder sb = new StringBuilder();
        if (old.isEmpty()) {
            int i = 0;
            while (left-- > 0) {
                sb.append(replacement);
                if (i == s.length()) {
                    return sb.toString();
                }
                int n = Character.charCount(s.codePointAt(i));
                sb.append(s, i, i + n);
                i += n;
            }
            return sb.append(s, i, s.length()).toString();
        }
        int i = 0;
        for (int j = s.indexOf(old); j >= 0 && left-- > 0; j = s.indexOf(old, i)) {
            sb.append(s, i, j).append(replacement);
            i = j + old.length();
        }
        return sb.append(s, i, s.length()).toString();
    }

    /**
     * {@code s.startswith(prefix, start, end)} (or endswith, with {@code atEnd}): prefix a string or a tuple (list)
     * of strings; start and end are Python slice bounds in code points, null for none.
     */
    static boolean affix(String s, Object prefix, Long start, Long end, boolean atEnd) {
        int n = s.codePointCount(0, s.length());
        long from = start == null ? 0 : start < 0 ? Math.max(0, start + n) : start;
        long to = end == null ? n : end < 0 ? Math.max(0, end + n) : Math.min(end, n);
        if (from > n || to < from) {
            return false; // as CPython: even the empty prefix does not match past the end or in an empty range
        }
        String part = s.substring(s.offsetByCodePoints(0, (int) from), s.offsetByCodePoints(0, (int) to));
        Collection<?> options = prefix instanceof Collection<?> c ? c : List.of(prefix == null ? "" : prefix);
        for (Object o : options) {
            if (!(o instanceof String p)) {
                throw new IllegalArgumentException((atEnd ? "endswith" : "startswith")
                        + " first arg must be str or a tuple of str, not " + typeName(o));
            }
            if (atEnd ? part.endsWith(p) : part.startsWith(p)) {
                return true;
            }
        }
        return false;
    }

    static String typeName(Object o) {
        return o == null ? "NoneType" : o.getClass().getSimpleName();
    }

    /** An ELResolver that answers Python's string methods on a {@link String} and leaves everything else alone. */
    static final class Methods extends ELResolver {
        @Override
        public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
            if (!(base instanceof String s) || !(method instanceof String name)) {
                return null;
            }
            Args a = Args.of(name, params);
            Object result = switch (name) {
                case "strip" -> strip(s, a.string(0, "chars", true));
                case "lstrip" -> lstrip(s, a.string(0, "chars", true));
                case "rstrip" -> rstrip(s, a.string(0, "chars", true));
                case "startswith", "endswith" -> affix(s, a.get(0, "prefix"), a.integer(1, "start"),
                        a.integer(2, "end"), name.equals("endswith"));
                case "split" -> split(s, a.string(0, "sep", true), orMinusOne(a.integer(1, "maxsplit")));
                case "replace" -> replace(s, a.string(0, "old", false), a.string(1, "new", false),
                        orMinusOne(a.integer(2, "count")));
                case "upper" -> s.toUpperCase(Locale.ROOT);
                case "lower" -> s.toLowerCase(Locale.ROOT);
                default -> NOT_OURS;
            };
            if (result == NOT_OURS) {
                return null;
            }
            context.setPropertyResolved(true);
            return result;
        }

        private static final Object NOT_OURS = new Object();

        private static long orMinusOne(Long v) {
            return v == null ? -1 : v;
        }

        @Override
        public Object getValue(ELContext context, Object base, Object property) {
            return null;
        }

        @Override
        public Class<?> getType(ELContext context, Object base, Object property) {
            return null;
        }

        @Override
        public void setValue(ELContext context, Object base, Object property, Object value) {
        }

        @Override
        public boolean isReadOnly(ELContext context, Object base, Object property) {
            return true;
        }

        @Override
        public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
            return null;
        }

        @Override
        public Class<?> getCommonPropertyType(ELContext context, Object base) {
            return null;
        }
    }

    /** A method call's arguments, positional or by keyword ({@code split(',', maxsplit=1)}). */
    private record Args(String method, List<Object> positional, Map<String, Object> named) {
        static Args of(String method, Object[] params) {
            List<Object> positional = new ArrayList<>();
            Map<String, Object> named = new HashMap<>();
            if (params != null) {
                for (Object p : params) {
                    if (p instanceof NamedParameter np) {
                        named.put(np.getName(), np.getValue());
                    } else {
                        positional.add(p);
                    }
                }
            }
            return new Args(method, positional, named);
        }

        Object get(int index, String name) {
            return index < positional.size() ? positional.get(index) : named.get(name);
        }

        String string(int index, String name, boolean noneAllowed) {
            Object v = get(index, name);
            if (v == null && noneAllowed) {
                return null;
            }
            if (!(v instanceof String s)) {
                throw new IllegalArgumentException("str." + method + "(): " + name + " must be a str, not "
                        + typeName(v));
            }
            return s;
        }

        Long integer(int index, String name) {
            Object v = get(index, name);
            if (v == null) {
                return null;
            }
            if (!(v instanceof Number n) || v instanceof Double || v instanceof Float) {
                throw new IllegalArgumentException("str." + method + "(): " + name + " must be an int, not "
                        + typeName(v));
            }
            return n.longValue();
        }
    }
}
