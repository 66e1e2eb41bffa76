package dev.collie.core.data;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.stream.IntStream;

import static dev.collie.core.data.CharTokenizer.BOS;
import static dev.collie.core.data.CharTokenizer.EOS;
import static dev.collie.core.data.Sample.IGNORE_INDEX;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JsonlDatasetTest {
    @TempDir
    Path dir;

    private Path write(String... lines) throws IOException {
        Path file = dir.resolve("data.jsonl");
        Files.writeString(file, String.join("\n", lines) + "\n", StandardCharsets.UTF_8);
        return file;
    }

    private static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }

    private static int[] of(int... v) {
        return v;
    }

    private static CollieException loadFails(Path file, Tokenizer tok, int maxLength, int vocab) {
        return assertThrows(CollieException.class, () -> JsonlDataset.load(file, tok, maxLength, vocab));
    }

    @Test
    void textFormTrainsOnEveryTokenAndAppendsEos() throws IOException {
        JsonlDataset ds = JsonlDataset.load(write("{\"text\": \"abc\"}"), new CharTokenizer(), 0, 0);
        assertEquals(1, ds.size());
        int[] expected = concat(of(BOS), CharTokenizer.ids("abc"), of(EOS));
        assertArrayEquals(expected, ds.get(0).inputIds());
        assertArrayEquals(expected, ds.get(0).labels());
    }

    @Test
    void appendEosFalseLeavesTheTextAsTokenized() throws IOException {
        JsonlDataset ds = JsonlDataset.load(write("{\"text\": \"abc\"}"), new CharTokenizer(), 0, 0, false);
        assertArrayEquals(concat(of(BOS), CharTokenizer.ids("abc")), ds.get(0).inputIds());
    }

    @Test
    void tokenizerWithoutEosGetsNoEosAppended() throws IOException {
        JsonlDataset ds = JsonlDataset.load(write("{\"text\": \"ab\"}"), new CharTokenizer(false, false), 0, 0);
        assertArrayEquals(CharTokenizer.ids("ab"), ds.get(0).inputIds());
    }

    @Test
    void eosIsNotAppendedTwiceWhenTheTextAlreadyEndsWithIt() throws IOException {
        Tokenizer endsWithEos = new CharTokenizer() {
            @Override
            public int[] encode(String text, boolean addSpecialTokens) {
                int[] ids = super.encode(text, addSpecialTokens);
                if (!addSpecialTokens) {
                    return ids;
                }
                int[] out = Arrays.copyOf(ids, ids.length + 1);
                out[ids.length] = EOS;
                return out;
            }
        };
        JsonlDataset ds = JsonlDataset.load(write("{\"input\": \"q\", \"output\": \"ab\"}"), endsWithEos, 0, 0);
        int[] ids = concat(of(BOS), CharTokenizer.ids("qab"), of(EOS));
        assertArrayEquals(ids, ds.get(0).inputIds());
        assertArrayEquals(concat(of(IGNORE_INDEX, IGNORE_INDEX), CharTokenizer.ids("ab"), of(EOS)),
                ds.get(0).labels());
    }

    @Test
    void inputOutputFormMasksTheInputPart() throws IOException {
        JsonlDataset ds = JsonlDataset.load(write("{\"input\": \"Q: hi\\n\", \"output\": \"ok\"}"),
                new CharTokenizer(), 0, 0);
        Sample s = ds.get(0);
        assertArrayEquals(concat(of(BOS), CharTokenizer.ids("Q: hi\nok"), of(EOS)), s.inputIds());
        int[] labels = new int[s.length()];
        Arrays.fill(labels, 0, 1 + 6, IGNORE_INDEX); // BOS and the six input characters
        System.arraycopy(concat(CharTokenizer.ids("ok"), of(EOS)), 0, labels, 7, 3);
        assertArrayEquals(labels, s.labels());
        assertEquals(3, s.labelCount());
    }

    @Test
    void inputOutputFormWithoutEosTrainsOnlyOnTheOutputTokens() throws IOException {
        JsonlDataset ds = JsonlDataset.load(write("{\"input\": \"xy\", \"output\": \"z\"}"),
                new CharTokenizer(true, false), 0, 0);
        assertArrayEquals(of(IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, CharTokenizer.id('z')), ds.get(0).labels());
    }

    @Test
    void tokensFormNeedsNoTokenizerAndDefaultsLabelsToTokens() throws IOException {
        JsonlDataset ds = JsonlDataset.load(write("{\"tokens\": [5, 6, 7]}"), null, 0, 10);
        assertEquals(new Sample(of(5, 6, 7), of(5, 6, 7)), ds.get(0));
    }

    @Test
    void tokensFormKeepsExplicitLabels() throws IOException {
        JsonlDataset ds = JsonlDataset.load(write(
                "{\"tokens\": [5, 6, 7], \"labels\": [-100, 6, 7]}",
                "{\"tokens\": [5, 6, 7], \"labels\": [9, -100, 8]}",
                "{\"tokens\": [4], \"labels\": null}"), null, 0, 10);
        assertEquals(new Sample(of(5, 6, 7), of(IGNORE_INDEX, 6, 7)), ds.get(0));
        assertEquals(new Sample(of(5, 6, 7), of(9, IGNORE_INDEX, 8)), ds.get(1));
        assertEquals(new Sample(of(4), of(4)), ds.get(2));
        assertEquals(7, ds.tokenCount());
    }

    @Test
    void tokensFormRejectsLabelsOfAnotherLength() throws IOException {
        Path file = write("{\"tokens\": [5, 6, 7], \"labels\": [5, 6]}");
        CollieException e = loadFails(file, null, 0, 0);
        assertTrue(e.getMessage().startsWith(file + ":1: \"labels\" has 2 entries but \"tokens\" has 3"),
                e.getMessage());
    }

    @Test
    void samplesLongerThanMaxLengthAreCutOnTheRight() throws IOException {
        JsonlDataset ds = JsonlDataset.load(write(
                "{\"text\": \"abcdef\"}",
                "{\"input\": \"ab\", \"output\": \"cdef\"}",
                "{\"tokens\": [1, 2, 3, 4, 5], \"labels\": [9, 8, 7, 6, 5]}",
                "{\"tokens\": [1, 2]}"), new CharTokenizer(), 4, 0);
        assertArrayEquals(concat(of(BOS), CharTokenizer.ids("abc")), ds.get(0).inputIds());
        assertArrayEquals(concat(of(BOS), CharTokenizer.ids("abc")), ds.get(0).labels());
        assertArrayEquals(concat(of(BOS), CharTokenizer.ids("abc")), ds.get(1).inputIds());
        assertArrayEquals(concat(of(IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX), CharTokenizer.ids("c")),
                ds.get(1).labels());
        assertEquals(new Sample(of(1, 2, 3, 4), of(9, 8, 7, 6)), ds.get(2));
        assertEquals(new Sample(of(1, 2), of(1, 2)), ds.get(3));
        assertEquals(4, ds.length(0));
    }

    @Test
    void outOfRangeTokenIdIsReportedWithFileLineAndId() throws IOException {
        Path file = write("{\"tokens\": [1, 2]}", "{\"tokens\": [3, 32000, 4]}");
        CollieException e = loadFails(file, null, 0, 32000);
        assertTrue(e.getMessage().startsWith(file + ":2: token id 32000 at \"tokens\"[1] is out of range [0, 32000)"),
                e.getMessage());
    }

    @Test
    void negativeTokenIdIsRejectedEvenWithoutAVocabularySize() throws IOException {
        Path file = write("{\"tokens\": [3, -1]}");
        CollieException e = loadFails(file, null, 0, 0);
        assertTrue(e.getMessage().startsWith(file + ":1: token id -1 at \"tokens\"[1] is out of range"),
                e.getMessage());
    }

    @Test
    void labelOutOfRangeIsRejectedButMinus100IsAllowed() throws IOException {
        Path file = write("{\"tokens\": [3, 4], \"labels\": [-100, 50]}");
        CollieException e = loadFails(file, null, 0, 50);
        assertTrue(e.getMessage().startsWith(file + ":1: label 50 at \"labels\"[1] is out of range [0, 50)"),
                e.getMessage());
    }

    @Test
    void tokenizerIdOutsideTheModelVocabularyIsReported() throws IOException {
        Path file = write("{\"text\": \"a\"}");
        CollieException e = loadFails(file, new CharTokenizer(), 0, 50); // 'a' is 100
        assertTrue(e.getMessage().startsWith(file + ":1: the tokenizer produced token id 100"), e.getMessage());
    }

    @Test
    void malformedJsonLineIsReportedWithFileAndLine() throws IOException {
        Path file = write("{\"text\": \"a\"}", "{\"text\": \"b\"", "{\"text\": \"c\"}");
        CollieException e = loadFails(file, new CharTokenizer(), 0, 0);
        assertTrue(e.getMessage().startsWith(file + ":2: not valid JSON"), e.getMessage());
    }

    @Test
    void trailingContentAfterTheObjectIsMalformed() throws IOException {
        Path file = write("{\"text\": \"a\"} {\"text\": \"b\"}");
        CollieException e = loadFails(file, new CharTokenizer(), 0, 0);
        assertTrue(e.getMessage().startsWith(file + ":1: not valid JSON"), e.getMessage());
    }

    @Test
    void lineWithoutAKnownFormListsItsKeys() throws IOException {
        Path file = write("{\"text\": \"a\"}", "{\"foo\": 1, \"bar\": 2}");
        CollieException e = loadFails(file, new CharTokenizer(), 0, 0);
        assertEquals(file + ":2: expected one of {\"text\"}, {\"input\",\"output\"}, {\"messages\"} or {\"tokens\"},"
                + " got keys [foo, bar]", e.getMessage());
    }

    @Test
    void inputWithoutOutputIsNotAForm() throws IOException {
        Path file = write("{\"input\": \"a\"}");
        CollieException e = loadFails(file, new CharTokenizer(), 0, 0);
        assertTrue(e.getMessage().endsWith("got keys [input]"), e.getMessage());
    }

    @Test
    void jsonThatIsNotAnObjectIsRejected() throws IOException {
        Path file = write("[1, 2, 3]", "");
        // A file starting with '[' is read as a JSON array of objects, whose elements here are numbers.
        CollieException e = loadFails(file, new CharTokenizer(), 0, 0);
        assertTrue(e.getMessage().startsWith(file + ":1: expected one of"), e.getMessage());
        Path other = write("{\"text\": \"a\"}", "\"just a string\"");
        CollieException e2 = loadFails(other, new CharTokenizer(), 0, 0);
        assertTrue(e2.getMessage().startsWith(other + ":2: expected one of"), e2.getMessage());
        assertTrue(e2.getMessage().endsWith("got a string \"just a string\""), e2.getMessage());
    }

    @Test
    void textThatIsNotAStringIsRejected() throws IOException {
        Path file = write("{\"text\": 42}");
        CollieException e = loadFails(file, new CharTokenizer(), 0, 0);
        assertEquals(file + ":1: \"text\" must be a string, got the number 42", e.getMessage());
    }

    @Test
    void tokenThatIsNotAnIntegerIsRejected() throws IOException {
        Path file = write("{\"tokens\": [1, 2.5]}");
        CollieException e = loadFails(file, null, 0, 0);
        assertEquals(file + ":1: \"tokens\"[1] must be an integer, got the number 2.5", e.getMessage());
    }

    @Test
    void textFormWithoutATokenizerIsRejected() throws IOException {
        Path file = write("{\"tokens\": [1]}", "{\"text\": \"a\"}");
        CollieException e = loadFails(file, null, 0, 0);
        assertTrue(e.getMessage().startsWith(file + ":2: a {\"text\"} sample needs a tokenizer"), e.getMessage());
    }

    @Test
    void emptySampleIsRejected() throws IOException {
        Path file = write("{\"tokens\": []}");
        CollieException e = loadFails(file, null, 0, 0);
        assertEquals(file + ":1: the sample has no tokens", e.getMessage());
    }

    @Test
    void blankLinesAreSkippedAndLaterLinesKeepTheirNumbers() throws IOException {
        Path ok = write("", "{\"tokens\": [1]}", "   ", "\t", "{\"tokens\": [2]}", "");
        JsonlDataset ds = JsonlDataset.load(ok, null, 0, 0);
        assertEquals(2, ds.size());
        assertArrayEquals(of(2), ds.get(1).inputIds());
        Path bad = write("{\"tokens\": [1]}", "", "", "{\"tokens\": [7]}");
        CollieException e = loadFails(bad, null, 0, 5);
        assertTrue(e.getMessage().startsWith(bad + ":4: token id 7"), e.getMessage());
    }

    @Test
    void keysBeyondTheFormAreIgnoredAndTokensWinOverText() throws IOException {
        JsonlDataset ds = JsonlDataset.load(write("{\"id\": 17, \"text\": \"zz\", \"tokens\": [4, 5]}"),
                new CharTokenizer(), 0, 0);
        assertArrayEquals(of(4, 5), ds.get(0).inputIds());
    }

    @Test
    void jsonArrayFileIsReadWithLineNumbers() throws IOException {
        Path file = dir.resolve("data.json");
        Files.writeString(file, "[\n  {\"tokens\": [1, 2]},\n  {\"text\": \"a\"},\n  {\"tokens\": [299]}\n]\n");
        JsonlDataset ok = JsonlDataset.load(file, new CharTokenizer(), 0, 0);
        assertEquals(3, ok.size());
        assertArrayEquals(of(BOS, CharTokenizer.id('a'), EOS), ok.get(1).inputIds());
        CollieException e = loadFails(file, new CharTokenizer(), 0, 200);
        assertTrue(e.getMessage().startsWith(file + ":4: token id 299"), e.getMessage());
    }

    @Test
    void utf8ByteOrderMarkIsIgnored() throws IOException {
        Path file = dir.resolve("bom.jsonl");
        Files.writeString(file, "\uFEFF{\"text\": \"é\"}\n", StandardCharsets.UTF_8);
        JsonlDataset ds = JsonlDataset.load(file, new CharTokenizer(), 0, 0);
        assertArrayEquals(of(BOS, CharTokenizer.id('é'), EOS), ds.get(0).inputIds());
    }

    @Test
    void emptyOrMissingFileIsRejected() throws IOException {
        Path empty = write("", "  ");
        assertTrue(loadFails(empty, null, 0, 0).getMessage().contains("holds no samples"));
        Path missing = dir.resolve("nope.jsonl");
        assertEquals("data file not found: " + missing, loadFails(missing, null, 0, 0).getMessage());
    }

    @Test
    void manySamplesRoundTrip() throws IOException {
        String[] lines = IntStream.range(0, 500)
                .mapToObj(i -> i % 2 == 0 ? "{\"tokens\": [" + i + ", " + (i + 1) + "]}"
                        : "{\"input\": \"" + "x".repeat(i % 7) + "\", \"output\": \"y\"}")
                .toArray(String[]::new);
        JsonlDataset ds = JsonlDataset.load(write(lines), new CharTokenizer(), 0, 0);
        assertEquals(500, ds.size());
        assertArrayEquals(of(498, 499), ds.get(498).inputIds());
        Sample s = ds.get(13); // input "xxxxxx"
        assertEquals(1 + 6 + 1 + 1, s.length());
        assertEquals(2, s.labelCount());
    }

    @Test
    void fileMixingAllThreeFormsLoads() throws Exception {
        Path file = Path.of(JsonlDatasetTest.class.getResource("/data/mixed.jsonl").toURI());
        JsonlDataset ds = JsonlDataset.load(file, new CharTokenizer(), 0, 300);
        assertEquals(3, ds.size());
        assertEquals(Sample.causal(concat(of(BOS), CharTokenizer.ids("hi"), of(EOS))), ds.get(0));
        assertEquals(2, ds.get(1).labelCount()); // "2" and EOS
        assertEquals(new Sample(of(7, 8, 9), of(IGNORE_INDEX, 8, 9)), ds.get(2));
        assertEquals(file, ds.source());
    }

    /**
     * A chat format for tests: each message as {@code [role]content|}, the assistant's {@code content|} marked, or
     * a failure for a message whose content is "boom".
     */
    private static final class ChatCharTokenizer extends CharTokenizer {
        final ChatFormat format = new ChatFormat() {
            @Override
            public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
                StringBuilder sb = new StringBuilder();
                for (ChatMessage m : messages) {
                    if (m.content().equals("boom")) {
                        throw new CollieException("chat template test raised an exception: boom");
                    }
                    sb.append('[').append(m.role()).append(']').append(m.content()).append('|');
                }
                return sb.append(addGenerationPrompt ? "[assistant]" : "").toString();
            }

            @Override
            public ChatEncoding encode(List<ChatMessage> messages, boolean addGenerationPrompt) {
                String text = render(messages, addGenerationPrompt);
                boolean[] mask = new boolean[text.length()];
                int at = 0;
                for (ChatMessage m : messages) {
                    at += m.role().length() + 2;
                    if (m.role().equals("assistant")) {
                        Arrays.fill(mask, at, at + m.content().length() + 1, true);
                    }
                    at += m.content().length() + 1;
                }
                return new ChatEncoding(ChatCharTokenizer.this.encode(text, false), mask);
            }
        };

        @Override
        public Optional<ChatFormat> chat() {
            return Optional.of(format);
        }

        @Override
        public String toString() {
            return "ChatCharTokenizer";
        }
    }

    private static String messages(String... roleContent) {
        StringBuilder sb = new StringBuilder("{\"messages\": [");
        for (int i = 0; i < roleContent.length; i += 2) {
            sb.append(i > 0 ? ", " : "").append("{\"role\": \"").append(roleContent[i]).append("\", \"content\": \"")
                    .append(roleContent[i + 1]).append("\"}");
        }
        return sb.append("]}").toString();
    }

    @Test
    void messagesFormTrainsOnTheAssistantTurnsOnlyAndAppendsNoEos() throws IOException {
        JsonlDataset ds = JsonlDataset.load(write(messages("system", "s", "user", "hi", "assistant", "yo",
                "user", "ok", "assistant", "no")), new ChatCharTokenizer(), 0, 0);
        String text = "[system]s|[user]hi|[assistant]yo|[user]ok|[assistant]no|";
        assertArrayEquals(CharTokenizer.ids(text), ds.get(0).inputIds(), "no BOS, no EOS: the template's text");
        int[] labels = ds.get(0).labels();
        StringBuilder trained = new StringBuilder();
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] != IGNORE_INDEX) {
                assertEquals(ds.get(0).inputIds()[i], labels[i]);
                trained.append(text.charAt(i));
            }
        }
        assertEquals("yo|no|", trained.toString());
    }

    @Test
    void messagesGoToTheTemplateWhateverTheirRoleAndAreCutToMaxLength() throws IOException {
        JsonlDataset ds = JsonlDataset.load(write(messages("narrator", "x", "assistant", "abc")),
                new ChatCharTokenizer(), 16, 0);
        assertArrayEquals(CharTokenizer.ids("[narrator]x|[ass"), ds.get(0).inputIds());
        assertEquals(0, ds.get(0).labelCount());
        JsonlDataset whole = JsonlDataset.load(write(messages("narrator", "x", "assistant", "abc")),
                new ChatCharTokenizer(), 0, 0);
        assertEquals(4, whole.get(0).labelCount());
    }

    @Test
    void tokensWinOverMessagesWhichWinOverInputOutput() throws IOException {
        JsonlDataset ds = JsonlDataset.load(write(
                "{\"tokens\": [4, 5], \"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}",
                "{\"input\": \"q\", \"output\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}"),
                new ChatCharTokenizer(), 0, 0);
        assertArrayEquals(of(4, 5), ds.get(0).inputIds());
        assertArrayEquals(CharTokenizer.ids("[user]a|"), ds.get(1).inputIds());
    }

    @Test
    void messagesWithoutATokenizerOrItsChatTemplateAreRejected() throws IOException {
        Path file = write("{\"tokens\": [1]}", messages("user", "hi"));
        CollieException none = loadFails(file, null, 0, 0);
        assertTrue(none.getMessage().startsWith(file + ":2: a {\"messages\"} sample needs a tokenizer"),
                none.getMessage());
        CollieException noTemplate = loadFails(file, new CharTokenizer(), 0, 0);
        assertTrue(noTemplate.getMessage().startsWith(file + ":2: a {\"messages\"} sample needs a chat template"),
                noTemplate.getMessage());
        assertTrue(noTemplate.getMessage().contains("add \"chat_template\" to the tokenizer_config.json"),
                noTemplate.getMessage());
    }

    @Test
    void badMessagesNameTheLineAndTheField() throws IOException {
        String[][] cases = {
            {"{\"messages\": \"hi\"}", "\"messages\" must be a non-empty array of {\"role\", \"content\"} objects,"
                + " got a string \"hi\""},
            {"{\"messages\": []}", "\"messages\" must be a non-empty array"},
            {"{\"messages\": [3]}", "\"messages\"[0] must be an object {\"role\", \"content\"}, got the number 3"},
            {"{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": 3, \"content\": \"b\"}]}",
                "\"messages\"[1].role must be a string, got the number 3"},
            {"{\"messages\": [{\"role\": \"user\"}]}", "\"messages\"[0].content must be a string, got nothing"},
            {"{\"messages\": [{\"role\": \"user\", \"content\": null}]}",
                "\"messages\"[0].content must be a string, got null"},
            {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\"}]}]}",
                "\"messages\"[0].content must be a string, got an array"},
            {messages("user", "boom"), "chat template test raised an exception: boom"},
        };
        for (String[] c : cases) {
            Path file = write(messages("user", "fine"), c[0]);
            CollieException e = loadFails(file, new ChatCharTokenizer(), 0, 0);
            assertTrue(e.getMessage().startsWith(file + ":2: " + c[1]), e.getMessage());
        }
    }

    @Test
    void sampleRejectsLabelsOfAnotherLength() {
        assertThrows(IllegalArgumentException.class, () -> new Sample(of(1, 2), of(1)));
    }
}
