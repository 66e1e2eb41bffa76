package dev.collie.models.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * Jinja2's whitespace rules, applied to a template's text before Jinjava parses it. Hugging Face renders chat
 * templates with {@code trim_blocks=True, lstrip_blocks=True}; Jinjava has both options, but its lstrip removes the
 * spaces before any block tag, also in mid-line, and it keeps the template's trailing newline. So this class does
 * what Jinja2's lexer does ({@code jinja2/lexer.py}, 3.1) and hands Jinjava a template with no whitespace control
 * left:
 * <ul>
 *   <li>{@code \r\n} and {@code \r} become {@code \n}; one newline at the very end is dropped
 *       ({@code keep_trailing_newline=False});</li>
 *   <li>{@code {%-}, {@code {{-}, {@code {#-} strip all white space before the tag, {@code -%}}, {@code -}}},
 *       {@code -#}} all white space after it (Python's notion of white space);</li>
 *   <li>trim_blocks: the first newline after a block or comment tag is dropped (not after {@code +%}});</li>
 *   <li>lstrip_blocks: spaces and tabs from the start of a line up to a block or comment tag are dropped (not
 *       before {@code {%+}, and not before {@code {{});</li>
 *   <li>comments are dropped; {@code {% raw %}} blocks are kept verbatim.</li>
 * </ul>
 * Tags are found as Jinja2 finds them: the earliest {@code {{}, {@code {%} or {@code {#}, and the tag's end outside
 * string literals and brackets. On the way it lists the filters and tests the template uses: Jinjava renders an
 * unknown filter as nothing, without an error, where Jinja2 refuses the template.
 */
final class JinjaWhitespace {
    /** The template for Jinjava, and the filters and tests it uses. */
    record Lexed(String text, List<Name> filters, List<Name> tests) {
    }

    /** A filter or test name and the line of the template that uses it. */
    record Name(String name, int line) {
    }

    private enum Kind { VARIABLE, BLOCK, COMMENT, RAW }

    private final String src;
    private final StringBuilder out = new StringBuilder();
    private final List<Name> filters = new ArrayList<>();
    private final List<Name> tests = new ArrayList<>();
    private int pos;
    /** Whether the text lexed last ended a line, as Jinja2's {@code line_starting} (true at the start). */
    private boolean lineStarting = true;

    private JinjaWhitespace(String src) {
        this.src = src;
    }

    /**
     * The template with Jinja2's whitespace control applied and no {@code -}/{@code +} markers or comments left.
     *
     * @throws IllegalArgumentException for a tag, comment or raw block that is not closed (the message says which
     *                                  and at which line)
     */
    static Lexed apply(String template) {
        String src = template.replace("\r\n", "\n").replace('\r', '\n');
        if (src.endsWith("\n")) {
            src = src.substring(0, src.length() - 1);
        }
        JinjaWhitespace lexer = new JinjaWhitespace(src);
        lexer.run();
        return new Lexed(lexer.out.toString(), List.copyOf(lexer.filters), List.copyOf(lexer.tests));
    }

    private void run() {
        while (pos < src.length()) {
            int start = nextTagStart(pos);
            if (start < 0) {
                text(src.substring(pos));
                return;
            }
            Kind kind = kindAt(start);
            int signAt = start + 2;
            char sign = signAt < src.length() && (src.charAt(signAt) == '-' || src.charAt(signAt) == '+')
                    ? src.charAt(signAt) : 0;
            String before = stripBefore(src.substring(pos, start), sign, kind != Kind.VARIABLE);
            text(before);
            int bodyFrom = sign != 0 ? signAt + 1 : signAt;
            switch (kind) {
                case COMMENT -> comment(start, bodyFrom);
                case RAW -> raw(start);
                default -> tag(kind, start, bodyFrom);
            }
        }
    }

    /** The earliest {@code {{}, {@code {%} or {@code {#} at or after {@code from}, or -1. */
    private int nextTagStart(int from) {
        for (int i = src.indexOf('{', from); i >= 0 && i + 1 < src.length(); i = src.indexOf('{', i + 1)) {
            char c = src.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') {
                return i;
            }
        }
        return -1;
    }

    private Kind kindAt(int start) {
        return switch (src.charAt(start + 1)) {
            case '{' -> Kind.VARIABLE;
            case '#' -> Kind.COMMENT;
            default -> rawBeginEnd(start) > 0 ? Kind.RAW : Kind.BLOCK;
        };
    }

    /** Jinja2's OptionalLStrip: what is left of the text before a tag with this sign. */
    private String stripBefore(String text, char sign, boolean lstripApplies) {
        if (sign == '-') {
            return PythonStrings.rstrip(text, null);
        }
        if (sign != '+' && lstripApplies) {
            int lineStart = text.lastIndexOf('\n') + 1;
            if ((lineStart > 0 || lineStarting) && lineStart < text.length()
                    && PythonStrings.isSpace(text, lineStart, text.length())) {
                return text.substring(0, lineStart);
            }
        }
        return text;
    }

    /** Appends literal text; a trailing '{' is written as an expression so Jinjava cannot read it as a tag start. */
    private void text(String text) {
        if (text.endsWith("{")) {
            out.append(text, 0, text.length() - 1).append("{{ '{' }}");
        } else {
            out.append(text);
        }
    }

    private void comment(int start, int bodyFrom) {
        for (int i = bodyFrom; i < src.length(); i++) {
            if (src.startsWith("+#}", i)) {
                finish(i + 3, false, false);
                return;
            }
            if (src.startsWith("-#}", i)) {
                finish(i + 3, true, false);
                return;
            }
            if (src.startsWith("#}", i)) {
                finish(i + 2, false, true);
                return;
            }
        }
        throw unclosed("comment", start);
    }

    private void tag(Kind kind, int start, int bodyFrom) {
        String close = kind == Kind.VARIABLE ? "}}" : "%}";
        int depth = 0;
        int i = bodyFrom;
        while (i < src.length()) {
            char c = src.charAt(i);
            if (c == '\'' || c == '"') {
                i = stringEnd(i, c, start);
                continue;
            }
            if (depth == 0) {
                boolean plus = kind == Kind.BLOCK && src.startsWith("+" + close, i);
                boolean minus = src.startsWith("-" + close, i);
                if (plus || minus || src.startsWith(close, i)) {
                    int end = plus || minus ? i + 3 : i + 2;
                    out.append(kind == Kind.VARIABLE ? "{{" : "{%").append(src, bodyFrom, i).append(close);
                    names(src.substring(bodyFrom, i), lineAt(start), kind == Kind.BLOCK);
                    finish(end, minus, kind == Kind.BLOCK && !plus);
                    return;
                }
            }
            if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if ((c == ')' || c == ']' || c == '}') && depth > 0) {
                depth--;
            }
            i++;
        }
        throw unclosed(kind == Kind.VARIABLE ? "expression {{" : "tag {%", start);
    }

    /** The index after the string literal that opens at {@code i} (backslash escapes skipped). */
    private int stringEnd(int i, char quote, int tagStart) {
        for (int j = i + 1; j < src.length(); j++) {
            char c = src.charAt(j);
            if (c == '\\') {
                j++;
            } else if (c == quote) {
                return j + 1;
            }
        }
        throw unclosed("string literal", tagStart);
    }

    /** The index after {@code {% raw %}} (with its optional signs) at {@code start}, or -1 if no raw tag is there. */
    private int rawBeginEnd(int start) {
        int i = start + 2;
        if (i < src.length() && (src.charAt(i) == '-' || src.charAt(i) == '+')) {
            i++;
        }
        i = skipSpace(i);
        if (!src.startsWith("raw", i)) {
            return -1;
        }
        int after = skipSpace(i + 3);
        if (after == i + 3 && after < src.length() && src.charAt(after) != '-' && src.charAt(after) != '%') {
            return -1; // a name that starts with "raw"
        }
        if (src.startsWith("-%}", after)) {
            return skipSpace(after + 3);
        }
        return src.startsWith("%}", after) ? after + 2 : -1;
    }

    /** {@code {% raw %}...{% endraw %}}: the content verbatim, in a Jinjava raw block. */
    private void raw(int start) {
        int contentFrom = rawBeginEnd(start);
        lineStarting = src.charAt(contentFrom - 1) == '\n';
        for (int i = src.indexOf("{%", contentFrom); i >= 0; i = src.indexOf("{%", i + 1)) {
            int j = i + 2;
            char sign = j < src.length() && (src.charAt(j) == '-' || src.charAt(j) == '+') ? src.charAt(j) : 0;
            int k = skipSpace(sign != 0 ? j + 1 : j);
            if (!src.startsWith("endraw", k)) {
                continue;
            }
            k = skipSpace(k + 6);
            boolean plus = src.startsWith("+%}", k);
            boolean minus = src.startsWith("-%}", k);
            if (!plus && !minus && !src.startsWith("%}", k)) {
                continue;
            }
            String content = stripBefore(src.substring(contentFrom, i), sign, true);
            out.append("{% raw %}").append(content).append("{% endraw %}");
            finish(plus || minus ? k + 3 : k + 2, minus, !plus);
            return;
        }
        throw unclosed("{% raw %} block", start);
    }

    /** Moves past a tag's end: all white space after {@code -%}}, or the one newline trim_blocks removes. */
    private void finish(int end, boolean stripAfter, boolean trimNewline) {
        pos = end;
        if (stripAfter) {
            pos = skipSpace(pos);
        } else if (trimNewline && pos < src.length() && src.charAt(pos) == '\n') {
            pos++;
        }
        lineStarting = pos > 0 && src.charAt(pos - 1) == '\n';
    }

    private int skipSpace(int i) {
        while (i < src.length() && PythonStrings.isSpace(src.charAt(i))) {
            i++;
        }
        return i;
    }

    /**
     * Records the filters ({@code | name}, and {@code {% filter name %}}) and tests ({@code is name},
     * {@code is not name}) of a tag's body, string literals skipped.
     */
    private void names(String body, int line, boolean block) {
        List<String> words = new ArrayList<>();
        char before = 0; // the character before the current identifier, white space skipped
        int i = 0;
        while (i < body.length()) {
            char c = body.charAt(i);
            if (c == '\'' || c == '"') {
                int j = i + 1;
                while (j < body.length() && body.charAt(j) != c) {
                    j += body.charAt(j) == '\\' ? 2 : 1;
                }
                i = j + 1;
                before = c;
                words.add("");
            } else if (Character.isLetter(c) || c == '_') {
                int j = i;
                while (j < body.length() && (Character.isLetterOrDigit(body.charAt(j)) || body.charAt(j) == '_')) {
                    j++;
                }
                String word = body.substring(i, j);
                int n = words.size();
                if (before == '|' || block && n == 1 && words.get(0).equals("filter")) {
                    filters.add(new Name(word, line));
                } else if (n > 0 && words.get(n - 1).equals("is") && !word.equals("not")
                        || n > 1 && words.get(n - 1).equals("not") && words.get(n - 2).equals("is")) {
                    tests.add(new Name(word, line));
                }
                words.add(word);
                before = 'a';
                i = j;
            } else {
                if (!PythonStrings.isSpace(c)) {
                    before = c;
                    if (!Character.isDigit(c)) {
                        words.add("");
                    }
                }
                i++;
            }
        }
    }

    private int lineAt(int at) {
        int line = 1;
        for (int i = 0; i < at; i++) {
            if (src.charAt(i) == '\n') {
                line++;
            }
        }
        return line;
    }

    private IllegalArgumentException unclosed(String what, int at) {
        return new IllegalArgumentException("the " + what + " opened at line " + lineAt(at) + " is not closed");
    }
}
