package dev.collie.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.CollieException;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fixtures: {@code src/test/resources/tokenizer/{wordlevel,bpe}}, written with Python {@code tokenizers} by
 * tools/reference/make_io_fixtures.py, whose expected.json holds Python's own encode/decode results.
 */
class HfTokenizerTest {

    @TempDir
    Path tmp;

    private static Path resource(String rel) {
        try {
            return Paths.get(HfTokenizerTest.class.getResource("/tokenizer/" + rel).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static int[] ints(JsonNode arr) {
        int[] out = new int[arr.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = arr.get(i).intValue();
        }
        return out;
    }

    /** Encode and decode like Python tokenizers did when it wrote expected.json. */
    private static void assertMatchesPython(HfTokenizer tok, Path expected) throws IOException {
        JsonNode cases = new ObjectMapper().readTree(expected.toFile());
        assertTrue(cases.size() >= 4);
        for (JsonNode c : cases) {
            String text = c.get("text").asText();
            boolean add = c.get("add_special_tokens").asBoolean();
            int[] ids = ints(c.get("ids"));
            String what = "'" + text + "' add=" + add;
            assertArrayEquals(ids, tok.encode(text, add), what);
            assertEquals(c.get("decoded").asText(), tok.decode(ids, false), what);
            assertEquals(c.get("decoded_skip").asText(), tok.decode(ids, true), what);
        }
    }

    @Test
    void wordLevelMatchesPython() throws IOException {
        try (HfTokenizer tok = HfTokenizer.load(resource("wordlevel"))) {
            assertMatchesPython(tok, resource("wordlevel/expected.json"));
            assertEquals(17, tok.vocabSize());
            assertArrayEquals(new int[] {1, 4, 5, 6}, tok.encode("the cat sat", true), "template adds <s>");
            assertArrayEquals(new int[] {4, 5, 6}, tok.encode("the cat sat", false));
            assertArrayEquals(new int[] {0}, tok.encode("zebra", false), "unknown word -> <unk>");
            assertArrayEquals(new String[] {"<s>", "the", "cat"}, tok.tokens("the cat", true));
        }
    }

    @Test
    void specialTokensFromTokenizerConfig() {
        try (HfTokenizer tok = HfTokenizer.load(resource("wordlevel"))) {
            // tokenizer_config.json says bos "<s>" (a string) and eos {"content": "</s>"} (an AddedToken dict);
            // special_tokens_map.json says bos "</s>" but tokenizer_config.json wins
            assertEquals(1, tok.bosId().getAsInt());
            assertEquals(2, tok.eosId().getAsInt());
            assertEquals(3, tok.padId());
            assertEquals(3, tok.tokenToId("<pad>").getAsInt());
            assertEquals(4, tok.tokenToId("the").getAsInt());
            assertTrue(tok.tokenToId("zebra").isEmpty());
        }
    }

    @Test
    void neverTruncatesOrPads() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 80; i++) {
            sb.append("the big cat sat on a small mat . ");
        }
        try (HfTokenizer tok = HfTokenizer.load(resource("wordlevel/tokenizer.json"))) {
            // 720 words: longer than tokenizer_config's model_max_length (8) and DJL's default limit (512)
            int[] ids = tok.encode(sb.toString(), true);
            assertEquals(721, ids.length);
            assertEquals(1, ids[0]);
            assertEquals(2, tok.encode("a b", false).length, "no padding to a batch length");
        }
    }

    @Test
    void byteLevelBpeMatchesPython() throws IOException {
        try (HfTokenizer tok = HfTokenizer.load(resource("bpe"))) {
            assertMatchesPython(tok, resource("bpe/expected.json"));
            assertEquals(300, tok.vocabSize());
            for (String s : List.of("héllo wörld 🙂 日本語", "  two  spaces\n\tand tabs", "The quick brown fox.")) {
                assertEquals(s, tok.decode(tok.encode(s, false), false), "byte-level BPE round-trips: " + s);
                assertEquals(s, tok.decode(tok.encode(s, true), true));
            }
        }
    }

    @Test
    void specialTokensFromConfigJson() {
        // the bpe fixture has no tokenizer_config.json: ids come from config.json (eos_token_id is a list there)
        try (HfTokenizer tok = HfTokenizer.load(resource("bpe"))) {
            assertEquals(0, tok.bosId().getAsInt());
            assertEquals(1, tok.eosId().getAsInt());
            assertEquals(2, tok.padId());
        }
    }

    @Test
    void padFallsBackToEosThenZero() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("only-json"));
        Files.copy(resource("bpe/tokenizer.json"), dir.resolve("tokenizer.json"));
        try (HfTokenizer tok = HfTokenizer.load(dir)) {
            assertTrue(tok.bosId().isEmpty());
            assertTrue(tok.eosId().isEmpty());
            assertEquals(0, tok.padId());
        }
        Files.writeString(dir.resolve("special_tokens_map.json"), "{\"eos_token\": \"<|eos|>\"}");
        try (HfTokenizer tok = HfTokenizer.load(dir)) {
            assertEquals(1, tok.eosId().getAsInt());
            assertEquals(1, tok.padId());
        }
    }

    @Test
    void missingTokenizerJsonNamesPath() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("empty"));
        CollieException e = assertThrows(CollieException.class, () -> HfTokenizer.load(dir));
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
        assertTrue(e.getMessage().contains("no such file"), e.getMessage());
    }

    @Test
    void malformedTokenizerJsonNamesPathAndLine() throws IOException {
        Path f = tmp.resolve("tokenizer.json");
        Files.writeString(f, "{\n  \"version\": \"1.0\",\n  \"model\": {\"type\": \"BPE\",, }\n}");
        CollieException e = assertThrows(CollieException.class, () -> HfTokenizer.load(f));
        assertTrue(e.getMessage().startsWith(f + ": malformed JSON at line 3"), e.getMessage());

        Files.writeString(f, "{\"version\": \"1.0\"}");
        e = assertThrows(CollieException.class, () -> HfTokenizer.load(f));
        assertTrue(e.getMessage().startsWith(f.toString()) && e.getMessage().contains("model"), e.getMessage());

        // valid JSON, but not a model the Rust library can build
        Files.writeString(f, "{\"version\": \"1.0\", \"model\": {\"type\": \"NoSuchModel\"}}");
        e = assertThrows(CollieException.class, () -> HfTokenizer.load(f));
        assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
    }

    /**
     * An id beyond the tokenizer's vocabulary (a model whose embedding table is padded past it emits one) decodes to
     * nothing, as transformers does; a negative id is an error.
     */
    @Test
    void idsBeyondTheVocabularyDecodeToNothingAndNegativeOnesAreRefused() {
        try (HfTokenizer tok = HfTokenizer.load(resource("wordlevel"))) {
            assertEquals(tok.decode(new int[] {4}, false), tok.decode(new int[] {4, 17, tok.vocabSize()}, false));
            assertEquals("", tok.decode(new int[] {17}, false));
            CollieException e = assertThrows(CollieException.class, () -> tok.decode(new int[] {4, -1}, false));
            assertTrue(e.getMessage().contains("-1"), e.getMessage());
        }
    }

    /** A copy of the word-level fixture with an added token {@code <big>} of id 10^9, in {@code tmp/big}. */
    static Path tokenizerWithHugeAddedId(Path tmp) throws IOException {
        ObjectMapper m = new ObjectMapper();
        var root = (com.fasterxml.jackson.databind.node.ObjectNode) m.readTree(
                resource("wordlevel/tokenizer.json").toFile());
        ((com.fasterxml.jackson.databind.node.ArrayNode) root.get("added_tokens")).addObject()
                .put("id", 1_000_000_000).put("content", "<big>").put("single_word", false).put("lstrip", false)
                .put("rstrip", false).put("normalized", false).put("special", true);
        Path dir = Files.createDirectories(tmp.resolve("big"));
        m.writeValue(dir.resolve("tokenizer.json").toFile(), root);
        return dir;
    }

    @Test
    void aTokenizerWithIdsBeyondTheModelsVocabularyIsRefusedNamingIdAndVocabSize() throws IOException {
        Path dir = tokenizerWithHugeAddedId(tmp);
        try (HfTokenizer tok = HfTokenizer.load(dir)) {
            assertEquals(1_000_000_001, tok.vocabSize());
            CollieException e = assertThrows(CollieException.class, () -> tok.requireFits(96, "model/config.json"));
            assertEquals(dir.resolve("tokenizer.json") + ": token id 1000000000 (\"<big>\") is outside the model's"
                    + " vocabulary: vocab_size is 96 (model/config.json)", e.getMessage());
            tok.requireFits(1_000_000_001, "a model as large");
        }
        try (HfTokenizer tok = HfTokenizer.load(resource("wordlevel"))) {
            tok.requireFits(17, "a model as large");
            assertThrows(CollieException.class, () -> tok.requireFits(16, "a smaller model"));
        }
    }

    /** The project's bundled tokenizer (another part of the tree), when it is there. */
    @Test
    void bundledExampleTokenizerMatchesItsReference() throws IOException {
        Path root = Paths.get("").toAbsolutePath();
        Path data = root.resolveSibling("examples").resolve("data");
        Path ref = data.resolve("tokenizer-reference.jsonl");
        Assumptions.assumeTrue(Files.isRegularFile(ref) && Files.isRegularFile(data.resolve("tokenizer/tokenizer.json")),
                "examples/data/tokenizer not present");
        ObjectMapper m = new ObjectMapper();
        try (HfTokenizer tok = HfTokenizer.load(data.resolve("tokenizer"))) {
            assertEquals(1, tok.bosId().getAsInt());
            assertEquals(2, tok.eosId().getAsInt());
            for (String line : Files.readAllLines(ref)) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode c = m.readTree(line);
                int[] ids = ints(c.get("ids"));
                assertArrayEquals(ids, tok.encode(c.get("text").asText(), true));
                assertEquals(c.get("text").asText(), tok.decode(ids, true));
            }
        }
    }
}
