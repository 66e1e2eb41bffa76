package dev.collie.examples.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.data.ChatMessage;
import dev.collie.models.tokenizer.ChatTemplate;
import dev.collie.models.tokenizer.HfTokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static dev.collie.examples.cli.CliTest.assertUserError;
import static dev.collie.examples.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Chat data and {@code generate --chat} through the CLI, with the Qwen2-with-generation-blocks tokenizer of the
 * chat-template fixtures (collie-models/src/test/resources/fixtures/chat, by tools/reference/make_chat_fixtures.py).
 */
class ChatCliTest {
    static final Path CHAT_TOKENIZER = Path.of("../collie-models/src/test/resources/fixtures/chat/qwen2-generation");
    static final String SYSTEM = "You are a terse assistant.";
    static final String PROMPT = "What is the capital of France?";

    /**
     * Trains the tiny preset with the chat tokenizer on a Moby-Dick sentence ({@code dir/text.txt}) and saves it to
     * {@code dir/name}, with {@code flags} ({@code --steps} among them); returns the run's result.
     */
    static CliTest.Result trainTinyModel(Path dir, String name, String... flags) throws IOException {
        Path data = Files.writeString(dir.resolve("text.txt"), "Call me Ishmael. Some years ago - never mind how"
                + " long precisely - having little or no money in my purse, I thought I would sail about a little.\n");
        List<String> args = new ArrayList<>(List.of("train", "--preset", "tiny", "--tokenizer",
                CHAT_TOKENIZER.toString(), "--data", data.toString(), "--seq", "16", "--micro-batch", "2", "--save",
                dir.resolve(name).toString()));
        args.addAll(List.of(flags));
        return run(args.toArray(String[]::new));
    }

    @TempDir
    static Path tmp;
    /** A tiny preset model trained two steps on {"messages"} lines, saved with the tokenizer and its template. */
    static Path model;

    @BeforeAll
    static void trainOnMessages() throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<List<Map<String, String>>> chats = List.of(
                List.of(Map.of("role", "system", "content", SYSTEM), Map.of("role", "user", "content", PROMPT),
                        Map.of("role", "assistant", "content", "Paris.")),
                List.of(Map.of("role", "user", "content", "And of Italy?"),
                        Map.of("role", "assistant", "content", "Rome, since 1871.")));
        StringBuilder lines = new StringBuilder();
        for (List<Map<String, String>> c : chats) {
            lines.append(json.writeValueAsString(Map.of("messages", c))).append('\n');
        }
        Path data = Files.writeString(tmp.resolve("chat.jsonl"), lines);
        model = tmp.resolve("model");
        CliTest.Result r = run("train", "--preset", "tiny", "--tokenizer", CHAT_TOKENIZER.toString(), "--data",
                data.toString(), "--micro-batch", "2", "--steps", "2", "--save", model.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isRegularFile(model.resolve("chat_template.jinja")), "the template is saved with the model");
    }

    /**
     * The answer of --chat is what plain generation prints after the template's text of [system, user] with the
     * generation prompt: the same ids in, the same greedy tokens out, and only those printed.
     */
    @Test
    void chatAnswersTheTemplatedPromptAndPrintsOnlyTheAnswer() {
        CliTest.Result chat = run("generate", "--model", model.toString(), "--chat", "--system", SYSTEM, "--prompt",
                PROMPT, "--max-new-tokens", "6", "--temperature", "1", "--seed", "5");
        assertEquals(0, chat.code(), chat.err());
        String rendered;
        String promptText;
        try (HfTokenizer tok = HfTokenizer.load(model)) {
            ChatTemplate template = tok.chatTemplate().orElseThrow();
            List<ChatMessage> messages = List.of(ChatMessage.system(SYSTEM), ChatMessage.user(PROMPT));
            rendered = template.render(messages, true);
            promptText = tok.decode(template.encode(messages, true).ids(), true);
        }
        assertTrue(rendered.endsWith("<|im_start|>assistant\n"), rendered);
        CliTest.Result plain = run("generate", "--model", model.toString(), "--prompt", rendered,
                "--max-new-tokens", "6", "--temperature", "1", "--seed", "5");
        assertEquals(0, plain.code(), plain.err());
        assertEquals(plain.out(), promptText + chat.out());
        assertFalse(chat.out().contains(PROMPT), chat.out());
        // not vacuous: the sampled answer has text (seeded; greedy decoding of this 2-step model ends at once)
        assertFalse(chat.out().isBlank(), "six tokens of an answer; stderr: " + chat.err());
    }

    @Test
    void systemWithoutChatIsOneErrorLine() {
        assertUserError(run("generate", "--model", CliTest.TINY.toString(), "--system", "be brief", "--prompt", "hi"),
                "--system", "--chat");
    }

    @Test
    void chatWithATokenizerWithoutATemplateIsOneErrorLine() throws IOException {
        Path bare = Files.createDirectories(tmp.resolve("bare"));
        Files.copy(CHAT_TOKENIZER.resolve("tokenizer.json"), bare.resolve("tokenizer.json"));
        assertUserError(run("generate", "--model", model.toString(), "--tokenizer", bare.toString(), "--chat",
                "--prompt", "hi"), "--chat", bare.toAbsolutePath().toString(), "has no chat template",
                "chat_template");
        assertUserError(run("train", "--preset", "tiny", "--tokenizer", bare.toString(), "--data",
                tmp.resolve("chat.jsonl").toString(), "--steps", "1", "--save", tmp.resolve("none").toString()),
                "chat.jsonl:1:", "needs a chat template", "chat_template");
    }
}
