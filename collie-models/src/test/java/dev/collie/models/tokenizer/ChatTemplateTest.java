package dev.collie.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.CollieException;
import dev.collie.core.data.ChatEncoding;
import dev.collie.core.data.ChatMessage;
import dev.collie.core.data.JsonlDataset;
import dev.collie.core.data.Sample;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Parity with transformers' {@code apply_chat_template} on the fixtures of tools/reference/make_chat_fixtures.py
 * (src/test/resources/fixtures/chat: the chat templates of Qwen2.5-Instruct, Llama-3-Instruct, ChatGLM3, Llama-2-chat,
 * Qwen2 with generation blocks, and one of our own calling Python's string methods).
 */
class ChatTemplateTest {
    static final Path CHAT = Path.of("src/test/resources/fixtures/chat");
    static final List<ChatMessage> TWO_TURNS = List.of(ChatMessage.system("You are a terse assistant."),
            ChatMessage.user("What is the capital of France?"), ChatMessage.assistant("Paris."),
            ChatMessage.user("And of Italy?"), ChatMessage.assistant("Rome, since 1871."));

    @TempDir
    Path tmp;

    /** One fixture case: a conversation and what transformers made of it (or the error it raised). */
    record Case(String name, List<ChatMessage> messages, boolean addGenerationPrompt, String text, int[] ids,
                boolean[] assistantMask, String error) {
    }

    static List<Case> cases(String template) throws IOException {
        JsonNode doc = new ObjectMapper().readTree(CHAT.resolve(template).resolve("cases.json").toFile());
        List<Case> out = new ArrayList<>();
        for (JsonNode c : doc.get("cases")) {
            List<ChatMessage> messages = new ArrayList<>();
            for (JsonNode m : c.get("messages")) {
                messages.add(new ChatMessage(m.get("role").textValue(), m.get("content").textValue()));
            }
            int[] ids = c.has("ids") ? ints(c.get("ids")) : null;
            boolean[] mask = null;
            if (c.has("assistant_masks")) {
                int[] m = ints(c.get("assistant_masks"));
                mask = new boolean[m.length];
                for (int i = 0; i < m.length; i++) {
                    mask[i] = m[i] == 1;
                }
            }
            out.add(new Case(c.get("name").textValue(), messages, c.get("add_generation_prompt").booleanValue(),
                    c.path("text").textValue(), ids, mask, c.path("error").textValue()));
        }
        return out;
    }

    private static int[] ints(JsonNode arr) {
        int[] out = new int[arr.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = arr.get(i).intValue();
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2.5", "llama3", "chatglm3", "llama2", "qwen2-generation", "python-strings"})
    void textIdsAndAssistantMaskEqualTransformers(String name) throws IOException {
        try (HfTokenizer tok = HfTokenizer.load(CHAT.resolve(name))) {
            ChatTemplate t = tok.chatTemplate().orElseThrow();
            int compared = 0;
            for (Case c : cases(name)) {
                if (c.error() != null) {
                    continue;
                }
                assertEquals(c.text(), t.render(c.messages(), c.addGenerationPrompt()), name + " " + c.name());
                ChatEncoding enc = t.encode(c.messages(), c.addGenerationPrompt());
                assertArrayEquals(c.ids(), enc.ids(), name + " " + c.name());
                if (c.assistantMask() != null) {
                    assertArrayEquals(c.assistantMask(), enc.assistantMask(), name + " " + c.name());
                }
                compared++;
            }
            assertTrue(compared >= 8, name + ": " + compared + " cases");
        }
    }

    /**
     * On the template that has generation blocks, rendering prefixes finds the very spans the blocks mark, and so
     * the tokens of transformers' return_assistant_tokens_mask.
     */
    @Test
    void prefixRenderingFindsWhatTheGenerationBlocksMark() throws IOException {
        try (HfTokenizer tok = HfTokenizer.load(CHAT.resolve("qwen2-generation"))) {
            ChatTemplate t = tok.chatTemplate().orElseThrow();
            assertTrue(t.hasGenerationBlocks());
            int withAssistant = 0;
            for (Case c : cases("qwen2-generation")) {
                ChatTemplate.Rendered blocks = t.renderWithGenerationBlocks(c.messages(), c.addGenerationPrompt());
                ChatTemplate.Rendered prefixes = t.renderByPrefixes(c.messages(), c.addGenerationPrompt());
                assertEquals(blocks, prefixes, c.name());
                assertArrayEquals(c.assistantMask(), t.encode(prefixes).assistantMask(), c.name());
                withAssistant += blocks.assistantSpans().isEmpty() ? 0 : 1;
            }
            assertTrue(withAssistant >= 6, withAssistant + " cases with assistant turns");
        }
    }

    /** Without generation blocks, each assistant turn is its content and the end of turn the template writes. */
    @ParameterizedTest
    @ValueSource(strings = {"qwen2.5", "llama3", "chatglm3", "llama2"})
    void assistantTokensOfTemplatesWithoutGenerationBlocks(String name) {
        List<String> expected = switch (name) {
            case "qwen2.5" -> List.of("Paris.<|im_end|>\n", "Rome, since 1871.<|im_end|>\n");
            case "llama3" -> List.of("Paris.<|eot_id|>", "Rome, since 1871.<|eot_id|>");
            case "chatglm3" -> List.of("\n Paris.", "\n Rome, since 1871.");
            default -> List.of(" Paris. </s>", " Rome, since 1871. </s>");
        };
        try (HfTokenizer tok = HfTokenizer.load(CHAT.resolve(name))) {
            ChatTemplate t = tok.chatTemplate().orElseThrow();
            assertFalse(t.hasGenerationBlocks());
            ChatEncoding enc = t.encode(TWO_TURNS, false);
            assertEquals(expected, maskedRuns(tok, enc));
            assertEquals(expected, maskedRuns(tok, t.encode(TWO_TURNS, true)), "with the generation prompt");
        }
    }

    /** The text of each run of consecutive assistant tokens. */
    private static List<String> maskedRuns(HfTokenizer tok, ChatEncoding enc) {
        List<String> runs = new ArrayList<>();
        int i = 0;
        while (i < enc.ids().length) {
            if (!enc.assistantMask()[i]) {
                i++;
                continue;
            }
            int j = i;
            while (j < enc.ids().length && enc.assistantMask()[j]) {
                j++;
            }
            runs.add(tok.decode(Arrays.copyOfRange(enc.ids(), i, j), false));
            i = j;
        }
        return runs;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama2", "python-strings"})
    void raiseExceptionFailsWithTheTemplateAndItsMessage(String name) throws IOException {
        Case c = cases(name).stream().filter(x -> x.error() != null).findFirst().orElseThrow();
        try (HfTokenizer tok = HfTokenizer.load(CHAT.resolve(name))) {
            ChatTemplate t = tok.chatTemplate().orElseThrow();
            CollieException e = assertThrows(CollieException.class, () -> t.render(c.messages(), false));
            assertTrue(e.getMessage().contains("raised an exception: " + c.error()), e.getMessage());
            assertTrue(e.getMessage().contains(CHAT.resolve(name).toString()), e.getMessage());
        }
    }

    /** A template that rewrites earlier turns once later ones follow (as Qwen3's drops old reasoning). */
    @Test
    void prefixRenderingRefusesATemplateThatRewritesEarlierTurns() throws IOException {
        Path dir = tokenizerWith("chat_template.jinja",
                "{% for m in messages %}{% if m.role == 'assistant' and not loop.last %}[earlier answer]"
                        + "{% else %}<{{ m.role }}>{{ m.content }}{% endif %}{% endfor %}");
        try (HfTokenizer tok = HfTokenizer.load(dir)) {
            ChatTemplate t = tok.chatTemplate().orElseThrow();
            assertEquals("<user>hi<assistant>hello", t.render(TWO_TURNS.subList(1, 3).stream()
                    .map(m -> m.role().equals("user") ? ChatMessage.user("hi") : ChatMessage.assistant("hello"))
                    .toList(), false));
            CollieException e = assertThrows(CollieException.class, () -> t.encode(TWO_TURNS, false));
            assertTrue(e.getMessage().contains("up to message 2 differently"), e.getMessage());
            assertTrue(e.getMessage().contains("{% generation %}"), e.getMessage());
        }
    }

    @Test
    void chatTemplateJinjaWinsOverTokenizerConfigAndNamedTemplatesTakeDefault() throws IOException {
        Path dir = tokenizerWith("tokenizer_config.json", "{\"chat_template\": [{\"name\": \"tool_use\", "
                + "\"template\": \"tools\"}, {\"name\": \"default\", \"template\": \"{{ messages[0].content }}!\"}],"
                + " \"eos_token\": {\"content\": \"<|im_end|>\"}}");
        try (HfTokenizer tok = HfTokenizer.load(dir)) {
            assertEquals("hi!", tok.chatTemplate().orElseThrow().render(List.of(ChatMessage.user("hi")), false));
        }
        Files.writeString(dir.resolve("chat_template.jinja"), "{{ eos_token }}{{ messages[0].content }}\n");
        try (HfTokenizer tok = HfTokenizer.load(dir)) {
            assertEquals("<|im_end|>hi", tok.chatTemplate().orElseThrow().render(List.of(ChatMessage.user("hi")),
                    false), "the .jinja file, its last newline dropped, with eos_token from {\"content\"}");
        }
    }

    @Test
    void aTokenizerWithoutATemplateHasNoChat() throws IOException {
        Path dir = tokenizerWith("tokenizer_config.json", "{\"eos_token\": \"<|im_end|>\"}");
        try (HfTokenizer tok = HfTokenizer.load(dir)) {
            assertEquals(Optional.empty(), tok.chatTemplate());
            assertTrue(tok.chat().isEmpty());
        }
    }

    @Test
    void badTemplatesFailNamingTheFileAndTheProblem() throws IOException {
        Path noDefault = tokenizerWith("tokenizer_config.json",
                "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}]}");
        try (HfTokenizer tok = HfTokenizer.load(noDefault)) {
            CollieException e = assertThrows(CollieException.class, tok::chatTemplate);
            assertTrue(e.getMessage().contains("tokenizer_config.json \"chat_template\""), e.getMessage());
            assertTrue(e.getMessage().contains("[tool_use]"), e.getMessage());
        }
        Path number = tokenizerWith("tokenizer_config.json", "{\"chat_template\": 3}");
        try (HfTokenizer tok = HfTokenizer.load(number)) {
            CollieException e = assertThrows(CollieException.class, tok::chatTemplate);
            assertTrue(e.getMessage().contains("must be a string or a list"), e.getMessage());
        }
        Path unclosed = tokenizerWith("chat_template.jinja", "{% for m in messages %}\n{{ m.content }\n");
        try (HfTokenizer tok = HfTokenizer.load(unclosed)) {
            CollieException e = assertThrows(CollieException.class, tok::chatTemplate);
            assertTrue(e.getMessage().contains("chat_template.jinja"), e.getMessage());
            assertTrue(e.getMessage().contains("expression {{ opened at line 2 is not closed"), e.getMessage());
        }
        Path unknownFilter = tokenizerWith("chat_template.jinja", "{{ 'a' | trim }}\n{{ messages | tojson | nosuch }}");
        try (HfTokenizer tok = HfTokenizer.load(unknownFilter)) {
            CollieException e = assertThrows(CollieException.class, tok::chatTemplate);
            assertTrue(e.getMessage().contains("line 2 of the chat template uses the filter 'nosuch'"), e.getMessage());
        }
        Path unknownTest = tokenizerWith("chat_template.jinja", "{% if messages is not defined or 'a|b' is nosuch %}");
        try (HfTokenizer tok = HfTokenizer.load(unknownTest)) {
            CollieException e = assertThrows(CollieException.class, tok::chatTemplate);
            assertTrue(e.getMessage().contains("line 1 of the chat template uses the test 'nosuch'"), e.getMessage());
        }
        Path unknownMethod = tokenizerWith("chat_template.jinja", "{{ messages[0].content.title() }}");
        try (HfTokenizer tok = HfTokenizer.load(unknownMethod)) {
            ChatTemplate t = tok.chatTemplate().orElseThrow();
            CollieException e = assertThrows(CollieException.class, () -> t.render(TWO_TURNS, false));
            assertTrue(e.getMessage().startsWith("chat template " + unknownMethod.resolve("chat_template.jinja")),
                    e.getMessage());
            assertTrue(e.getMessage().contains("title"), e.getMessage());
        }
    }

    @Test
    void aMessageWithTheReservedMarkersIsRefused() throws IOException {
        try (HfTokenizer tok = HfTokenizer.load(CHAT.resolve("qwen2-generation"))) {
            ChatTemplate t = tok.chatTemplate().orElseThrow();
            CollieException e = assertThrows(CollieException.class,
                    () -> t.encode(List.of(ChatMessage.user("a\uFDD0b")), false));
            assertTrue(e.getMessage().contains("message 0 contains U+FDD0"), e.getMessage());
        }
    }

    /**
     * The fixture conversations as {"messages"} JSONL lines: JsonlDataset gives transformers' ids, and labels that
     * are the ids where return_assistant_tokens_mask is 1 and -100 elsewhere.
     */
    @Test
    void jsonlMessagesGiveTransformersIdsAndAssistantLabels() throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<Case> chats = cases("qwen2-generation").stream().filter(c -> !c.addGenerationPrompt()).toList();
        List<String> lines = new ArrayList<>();
        for (Case c : chats) {
            lines.add(json.writeValueAsString(Map.of("messages", c.messages().stream()
                    .map(m -> Map.of("role", m.role(), "content", m.content())).toList())));
        }
        Path file = Files.write(tmp.resolve("chat.jsonl"), lines);
        try (HfTokenizer tok = HfTokenizer.load(CHAT.resolve("qwen2-generation"))) {
            JsonlDataset ds = JsonlDataset.load(file, tok, 0, tok.vocabSize());
            assertEquals(chats.size(), ds.size());
            for (int i = 0; i < chats.size(); i++) {
                Case c = chats.get(i);
                int[] labels = new int[c.ids().length];
                for (int j = 0; j < labels.length; j++) {
                    labels[j] = c.assistantMask()[j] ? c.ids()[j] : Sample.IGNORE_INDEX;
                }
                assertEquals(new Sample(c.ids(), labels), ds.get(i), c.name());
            }
        }
    }

    /** A directory with qwen2.5's tokenizer.json and {@code file} holding {@code text}. */
    private Path tokenizerWith(String file, String text) throws IOException {
        Path dir = Files.createTempDirectory(tmp, "tok");
        Files.copy(CHAT.resolve("qwen2.5").resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        Files.writeString(dir.resolve(file), text);
        return dir;
    }
}
