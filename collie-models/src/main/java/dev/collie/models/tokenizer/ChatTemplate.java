package dev.collie.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;
import dev.collie.core.CollieException;
import dev.collie.core.data.ChatEncoding;
import dev.collie.core.data.ChatFormat;
import dev.collie.core.data.ChatMessage;
import jinjava.javax.el.CompositeELResolver;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * A checkpoint's Hugging Face chat template, rendered by a real Jinja engine (HubSpot's Jinjava) as transformers'
 * {@code apply_chat_template} renders it, and tokenized with the checkpoint's tokenizer without adding special
 * tokens (the template writes them).
 *
 * <p>The template is {@code chat_template.jinja} beside {@code tokenizer.json}, else {@code "chat_template"} in
 * {@code tokenizer_config.json} (a string, or a list of {@code {"name", "template"}} of which {@code default} is
 * taken), as transformers reads them. The template sees {@code messages} (each with {@code role} and
 * {@code content}), {@code add_generation_prompt}, the special tokens of {@code tokenizer_config.json} (then
 * {@code special_tokens_map.json}: {@code bos_token}, {@code eos_token}, {@code unk_token}, {@code sep_token},
 * {@code pad_token}, {@code cls_token}, {@code mask_token}, as strings even where the file writes
 * {@code {"content": ...}}) and {@code raise_exception(message)}, which fails the render with a
 * {@link CollieException} naming the template and the message. What Jinjava does differently from Jinja2 is made
 * Jinja2's: whitespace control ({@link JinjaWhitespace}), Python's string methods ({@link PythonStrings}),
 * {@code tojson} ({@link PythonJson}) and {@code trim}; a filter or test Jinjava lacks is refused when the template
 * is loaded (Jinjava would print nothing for it).
 *
 * <p>The assistant's tokens (for training labels) are found in one of two ways:
 * <ul>
 *   <li>Where the template marks them with {@code {% generation %}...{% endgeneration %}} (HF's marker for
 *       {@code return_assistant_tokens_mask}), the marked text is the assistant's, and a token is the assistant's
 *       from the one holding a block's first character to the one holding its last, as transformers counts.</li>
 *   <li>Otherwise by rendering prefixes: for each assistant message {@code i}, the text of {@code messages[:i]}
 *       with the generation prompt is a prefix of the text of {@code messages[:i+1]}, and what the second adds is
 *       the assistant's turn (its content and the end-of-turn token the template puts after it). A template that
 *       renders earlier turns differently once later ones follow is refused with a message that says so.</li>
 * </ul>
 * Both give the same tokens where a template's generation blocks mark exactly what follows the generation prompt
 * (tested on a template that has both). Thread-safe.
 */
public final class ChatTemplate implements ChatFormat {
    /** Written around the output of a generation block while rendering (Unicode noncharacters, for internal use). */
    private static final char GENERATION_START = '\uFDD0';
    private static final char GENERATION_END = '\uFDD1';
    private static final List<String> SPECIAL_TOKENS = List.of("bos_token", "eos_token", "unk_token", "sep_token",
            "pad_token", "cls_token", "mask_token");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String source;
    private final String template;
    private final String jinjavaText;
    private final Map<String, String> specialTokens;
    private final boolean generationBlocks;
    private final HfTokenizer tokenizer;

    private ChatTemplate(String source, String template, Map<String, String> specialTokens, HfTokenizer tokenizer) {
        this.source = source;
        this.template = template;
        if (template.indexOf(GENERATION_START) >= 0 || template.indexOf(GENERATION_END) >= 0) {
            throw new CollieException(source + ": the chat template contains U+FDD0 or U+FDD1, which ChatTemplate"
                    + " reserves");
        }
        JinjaWhitespace.Lexed lexed;
        try {
            lexed = JinjaWhitespace.apply(template);
        } catch (IllegalArgumentException e) {
            throw new CollieException(source + ": the chat template cannot be read: " + e.getMessage(), e);
        }
        Context engine = Engine.JINJAVA.getGlobalContext();
        requireKnown(lexed.filters(), "filter", name -> engine.getFilter(name) != null);
        requireKnown(lexed.tests(), "test", name -> engine.getExpTest(name) != null);
        this.jinjavaText = lexed.text();
        this.specialTokens = Map.copyOf(specialTokens);
        this.generationBlocks = jinjavaText.matches("(?s).*\\{%\\s*generation\\s*%}.*");
        this.tokenizer = tokenizer;
    }

    /** Jinjava renders an unknown filter as nothing; refuse the template instead, as Jinja2 does. */
    private void requireKnown(List<JinjaWhitespace.Name> names, String what, Predicate<String> known) {
        for (JinjaWhitespace.Name n : names) {
            if (!known.test(n.name())) {
                throw new CollieException(source + ": line " + n.line() + " of the chat template uses the " + what
                        + " '" + n.name() + "', which Jinjava does not have");
            }
        }
    }

    /**
     * The chat template in the directory of {@code tokenizer} (see the class comment), bound to it for
     * {@link #encode}; empty when the directory has none.
     *
     * @throws CollieException if a file is malformed or {@code chat_template} has the wrong type (the message names
     *                         the file and the field)
     */
    public static Optional<ChatTemplate> load(HfTokenizer tokenizer) {
        Path dir = tokenizer.path().toAbsolutePath().getParent();
        Path config = dir.resolve("tokenizer_config.json");
        JsonNode cfg = Files.isRegularFile(config) ? readObject(config) : JSON.createObjectNode();
        Map<String, String> special = new HashMap<>();
        Path map = dir.resolve("special_tokens_map.json");
        JsonNode fallback = Files.isRegularFile(map) ? readObject(map) : JSON.createObjectNode();
        for (String key : SPECIAL_TOKENS) {
            String token = specialToken(cfg.get(key));
            if (token == null) {
                token = specialToken(fallback.get(key));
            }
            if (token != null) {
                special.put(key, token);
            }
        }
        Path jinja = dir.resolve("chat_template.jinja");
        if (Files.isRegularFile(jinja)) {
            try {
                return Optional.of(new ChatTemplate(jinja.toString(), Files.readString(jinja), special, tokenizer));
            } catch (IOException e) {
                throw new CollieException(jinja + ": cannot read: " + e, e);
            }
        }
        JsonNode t = cfg.get("chat_template");
        if (t == null || t.isNull()) {
            return Optional.empty();
        }
        String where = config + " \"chat_template\"";
        if (t.isTextual()) {
            return Optional.of(new ChatTemplate(where, t.textValue(), special, tokenizer));
        }
        if (t.isArray()) {
            List<String> names = new ArrayList<>();
            for (JsonNode named : t) {
                String name = named.path("name").asText(null);
                names.add(name);
                if ("default".equals(name) && named.path("template").isTextual()) {
                    return Optional.of(new ChatTemplate(where + " (default)", named.get("template").textValue(),
                            special, tokenizer));
                }
            }
            throw new CollieException(where + ": a list of templates needs one named \"default\"; the names are "
                    + names);
        }
        throw new CollieException(where + " must be a string or a list of {\"name\", \"template\"}, got "
                + t.getNodeType().name().toLowerCase(Locale.ROOT));
    }

    private static JsonNode readObject(Path p) {
        try {
            JsonNode n = JSON.readTree(p.toFile());
            if (n == null || !n.isObject()) {
                throw new CollieException(p + ": expected a JSON object");
            }
            return n;
        } catch (IOException e) {
            throw new CollieException(p + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** {@code "<s>"} or {@code {"content": "<s>", ...}}; null if absent. */
    private static String specialToken(JsonNode v) {
        if (v == null || v.isNull()) {
            return null;
        }
        return v.isTextual() ? v.textValue() : v.path("content").isTextual() ? v.get("content").textValue() : null;
    }

    /** The conversation as the template writes it (transformers' {@code apply_chat_template(tokenize=False)}). */
    @Override
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return renderWithGenerationBlocks(messages, addGenerationPrompt).text();
    }

    /**
     * The conversation's ids (transformers' {@code apply_chat_template(tokenize=True)}: the rendered text tokenized
     * without adding special tokens) and which of them are the assistant's (see the class comment).
     */
    @Override
    public ChatEncoding encode(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return encode(renderWithAssistantSpans(messages, addGenerationPrompt));
    }

    /** The ids of a rendered text, with the tokens of its assistant spans marked. */
    ChatEncoding encode(Rendered r) {
        HfTokenizer.Offsets tokens = tokenizer.encodeWithOffsets(r.text());
        return new ChatEncoding(tokens.ids(), assistantMask(r, tokens));
    }

    /** Rendered text and where in it the assistant wrote. */
    public record Rendered(String text, List<Span> assistantSpans) {
        public Rendered {
            assistantSpans = List.copyOf(assistantSpans);
        }
    }

    /** Characters {@code [start, end)} of a rendered text (Java string indices). */
    public record Span(int start, int end) {
    }

    /**
     * The rendered conversation with the assistant's spans: from the generation blocks where the template has
     * them, else by rendering prefixes (see the class comment).
     */
    public Rendered renderWithAssistantSpans(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return generationBlocks ? renderWithGenerationBlocks(messages, addGenerationPrompt)
                : renderByPrefixes(messages, addGenerationPrompt);
    }

    /** Whether the template marks the assistant's text with {@code {% generation %}} blocks. */
    public boolean hasGenerationBlocks() {
        return generationBlocks;
    }

    /** The rendered text with the spans of its generation blocks, in the order the blocks closed. */
    Rendered renderWithGenerationBlocks(List<ChatMessage> messages, boolean addGenerationPrompt) {
        String marked = renderMarked(messages, addGenerationPrompt);
        StringBuilder text = new StringBuilder(marked.length());
        List<Span> spans = new ArrayList<>();
        Deque<Integer> open = new ArrayDeque<>();
        for (int i = 0; i < marked.length(); i++) {
            char c = marked.charAt(i);
            if (c == GENERATION_START) {
                open.push(text.length());
            } else if (c == GENERATION_END) {
                if (open.isEmpty()) {
                    throw new CollieException(source + ": a {% generation %} block's output was cut by the template");
                }
                spans.add(new Span(open.pop(), text.length()));
            } else {
                text.append(c);
            }
        }
        if (!open.isEmpty()) {
            throw new CollieException(source + ": a {% generation %} block's output was cut by the template");
        }
        return new Rendered(text.toString(), spans);
    }

    /** The rendered text with the assistant's spans found by rendering prefixes of the conversation. */
    Rendered renderByPrefixes(List<ChatMessage> messages, boolean addGenerationPrompt) {
        String full = render(messages, addGenerationPrompt);
        List<Span> spans = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            if (!messages.get(i).role().equals("assistant")) {
                continue;
            }
            String before = render(messages.subList(0, i), true);
            String through = render(messages.subList(0, i + 1), false);
            if (!through.startsWith(before) || !full.startsWith(through)) {
                throw new CollieException(source + ": the chat template writes the conversation up to message " + i
                        + " differently once more messages follow, so the assistant's tokens cannot be found by"
                        + " rendering prefixes; mark them with {% generation %}...{% endgeneration %} in the template");
            }
            if (through.length() > before.length()) {
                spans.add(new Span(before.length(), through.length()));
            }
        }
        return new Rendered(full, spans);
    }

    /**
     * Token by token, whether it is the assistant's, as transformers' {@code return_assistant_tokens_mask}: for each
     * span, the tokens from the one holding its first character through the one holding its last (the first token
     * whose offsets hold a character, offsets in code points); a span whose start no token holds ends the marking.
     */
    private static boolean[] assistantMask(Rendered r, HfTokenizer.Offsets tokens) {
        boolean[] mask = new boolean[tokens.ids().length];
        String text = r.text();
        for (Span s : r.assistantSpans()) {
            if (s.end() <= s.start()) {
                continue;
            }
            int first = tokens.tokenAt(text.codePointCount(0, s.start()));
            int last = tokens.tokenAt(text.codePointCount(0, s.end()) - 1);
            if (first < 0) {
                break;
            }
            int to = last < 0 ? mask.length : last + 1;
            for (int t = first; t < to; t++) {
                mask[t] = true;
            }
        }
        return mask;
    }

    /** The rendered text with each generation block's output between GENERATION_START and GENERATION_END. */
    private String renderMarked(List<ChatMessage> messages, boolean addGenerationPrompt) {
        Map<String, Object> context = new HashMap<>(specialTokens);
        List<Map<String, Object>> list = new ArrayList<>(messages.size());
        for (int i = 0; i < messages.size(); i++) {
            ChatMessage m = messages.get(i);
            if (reserved(m.role()) || reserved(m.content())) {
                throw new CollieException("message " + i + " contains U+FDD0 or U+FDD1, which " + source
                        + " reserves for marking generation blocks");
            }
            Map<String, Object> message = new LinkedHashMap<>();
            message.put("role", m.role());
            message.put("content", m.content());
            list.add(message);
        }
        context.put("messages", list);
        context.put("add_generation_prompt", addGenerationPrompt);
        RenderResult result = Engine.JINJAVA.renderForResult(jinjavaText, context);
        for (TemplateError e : result.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw failure(e);
            }
        }
        return result.getOutput();
    }

    private static boolean reserved(String s) {
        return s.indexOf(GENERATION_START) >= 0 || s.indexOf(GENERATION_END) >= 0;
    }

    private CollieException failure(TemplateError e) {
        for (Throwable t = e.getException(); t != null; t = t.getCause()) {
            if (t instanceof Raised r) {
                return new CollieException("chat template " + source + " raised an exception: " + r.getMessage());
            }
        }
        String where = e.getFieldName() == null || e.getFieldName().isBlank() ? "" : " in '" + e.getFieldName() + "'";
        return new CollieException("chat template " + source + " failed" + where + ": " + e.getMessage());
    }

    /** Where the template came from: a file, or tokenizer_config.json's field. */
    public String source() {
        return source;
    }

    /** The template's text, as the file holds it. */
    public String template() {
        return template;
    }

    @Override
    public String toString() {
        return "ChatTemplate[" + source + "]";
    }

    /** {@code raise_exception(message)}: HF's way for a template to refuse a conversation. */
    private static final class Raised extends RuntimeException {
        Raised(String message) {
            super(message, null, false, false);
        }
    }

    @SuppressWarnings("unused") // called by Jinjava, through the function registered below
    private static Object raiseException(Object message) {
        throw new Raised(String.valueOf(message));
    }

    /** The one Jinjava, configured as HF's Jinja2 environment, shared by every template (Jinjava is thread-safe). */
    private static final class Engine {
        static final Jinjava JINJAVA = create();

        private static Jinjava create() {
            CompositeELResolver resolver = new CompositeELResolver();
            resolver.add(new PythonStrings.Methods());
            resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
            JinjavaConfig config = JinjavaConfig.newBuilder()
                    .withTrimBlocks(false) // JinjaWhitespace applied Jinja2's rules already
                    .withLstripBlocks(false)
                    .withElResolver(resolver)
                    .build();
            Jinjava jinjava = new Jinjava(config);
            jinjava.registerFilter(new ToJson());
            jinjava.registerFilter(new Trim());
            jinjava.registerTag(new Generation());
            jinjava.registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class,
                    "raiseException", Object.class));
            return jinjava;
        }
    }

    /** HF's tojson: {@code json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)}. */
    private static final class ToJson implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object ensureAscii = arg(args, 0, kwargs, "ensure_ascii");
            Object indent = arg(args, 1, kwargs, "indent");
            Object separators = arg(args, 2, kwargs, "separators");
            Object sortKeys = arg(args, 3, kwargs, "sort_keys");
            if (separators != null && !(separators instanceof List<?>)) {
                throw new IllegalArgumentException("tojson: separators must be a tuple of two strings");
            }
            return PythonJson.dumps(var, truthy(ensureAscii), indent, (List<?>) separators, truthy(sortKeys));
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return filter(var, interpreter, args, Map.of());
        }

        private static Object arg(Object[] args, int i, Map<String, Object> kwargs, String name) {
            return args != null && i < args.length ? args[i] : kwargs.get(name);
        }

        private static boolean truthy(Object o) {
            return o instanceof Boolean b ? b : o != null && !(o instanceof Number n && n.doubleValue() == 0);
        }
    }

    /** Jinja2's trim: Python's {@code str.strip(chars)} (Jinjava's strips Java's white space). */
    private static final class Trim implements Filter {
        @Override
        public String getName() {
            return "trim";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object chars = args != null && args.length > 0 ? args[0] : kwargs.get("chars");
            return PythonStrings.strip(var == null ? "" : var.toString(), chars == null ? null : chars.toString());
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return filter(var, interpreter, args, Map.of());
        }
    }

    /** {@code {% generation %}...{% endgeneration %}}: renders its body between the two markers. */
    private static final class Generation implements Tag {
        @Override
        public String getName() {
            return "generation";
        }

        @Override
        public String getEndTagName() {
            return "endgeneration";
        }

        @Override
        public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
            StringBuilder out = new StringBuilder().append(GENERATION_START);
            try (JinjavaInterpreter.InterpreterScopeClosable scope = interpreter.enterScope()) {
                for (Node child : tagNode.getChildren()) {
                    out.append(child.render(interpreter).getValue());
                }
            }
            return out.append(GENERATION_END).toString();
        }
    }
}
