package dev.collie.models.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.CollieException;
import dev.collie.core.data.ChatFormat;
import dev.collie.core.data.Tokenizer;
import dev.collie.core.io.InputFiles;
import dev.collie.core.tensor.NativeStartupMessages;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * A Hugging Face {@code tokenizer.json} tokenizer (BPE, WordLevel, WordPiece, Unigram, with its normalizer,
 * pre-tokenizer, post-processor and decoder), run by the Rust {@code tokenizers} library through DJL, offline.
 * Truncation and padding are off: {@link #encode} returns every token.
 *
 * <p>BOS/EOS/PAD come from, in order of precedence, {@code tokenizer_config.json}, {@code special_tokens_map.json}
 * (token strings, looked up in the vocabulary) and {@code config.json} ({@code bos_token_id}, ...) next to
 * {@code tokenizer.json}. Whether {@code encode(text, true)} adds BOS/EOS is up to the tokenizer's post-processor.
 * The directory's chat template, if any, is {@link #chatTemplate()}. Thread-safe; close it to free the native
 * tokenizer.
 */
public final class HfTokenizer implements Tokenizer, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(HfTokenizer.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final HuggingFaceTokenizer tokenizer;
    private final Map<String, Integer> vocab;
    private final int vocabSize;
    private final Integer bos;
    private final Integer eos;
    private final Integer pad;
    /** The chat template, read on first use: null until then, then the loaded one or empty. */
    private volatile Optional<ChatTemplate> chatTemplate;

    private HfTokenizer(Path file, HuggingFaceTokenizer tokenizer, Map<String, Integer> vocab, int vocabSize,
                        Integer bos, Integer eos, Integer pad) {
        this.file = file;
        this.tokenizer = tokenizer;
        this.vocab = vocab;
        this.vocabSize = vocabSize;
        this.bos = bos;
        this.eos = eos;
        this.pad = pad;
    }

    /**
     * Loads {@code tokenizer.json} from {@code dirOrFile} (a model directory, or the file itself) and the special
     * tokens from the config files beside it. Never touches the network.
     *
     * @throws CollieException if tokenizer.json is missing or malformed (the message names the path)
     */
    public static HfTokenizer load(Path dirOrFile) {
        Path file = Files.isDirectory(dirOrFile) ? dirOrFile.resolve("tokenizer.json") : dirOrFile;
        Path dir = file.toAbsolutePath().getParent();
        byte[] bytes = InputFiles.read(file, "a Hugging Face tokenizer directory has a tokenizer.json",
                Files::readAllBytes);
        JsonNode root = parse(file, bytes);
        if (root == null || !root.isObject() || !root.has("model")) {
            throw new CollieException(file + ": not a Hugging Face tokenizer.json (no \"model\" object)");
        }
        Map<String, Integer> vocab = vocabulary(file, root);
        int size = 0;
        for (int id : vocab.values()) {
            size = Math.max(size, id + 1);
        }

        HuggingFaceTokenizer hf;
        try {
            NativeStartupMessages.quiet();
            preferOffline();
            Map<String, String> options = Map.of(
                    "addSpecialTokens", "true",
                    "truncation", "false",
                    "padding", "false");
            hf = HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(bytes), options);
        } catch (IOException | RuntimeException | UnsatisfiedLinkError e) {
            throw new CollieException(file + ": the tokenizers library cannot load it: " + e.getMessage(), e);
        }

        Integer[] ids = new Integer[3];
        String[] keys = {"bos_token", "eos_token", "pad_token"};
        for (String name : new String[] {"tokenizer_config.json", "special_tokens_map.json"}) {
            Path p = dir.resolve(name);
            if (!Files.isRegularFile(p)) {
                continue;
            }
            JsonNode cfg = readJson(p, hf);
            for (int k = 0; k < 3; k++) {
                if (ids[k] == null) {
                    ids[k] = tokenIdOf(p, keys[k], cfg.get(keys[k]), vocab);
                }
            }
        }
        Path config = dir.resolve("config.json");
        if (Files.isRegularFile(config) && (ids[0] == null || ids[1] == null || ids[2] == null)) {
            JsonNode cfg = readJson(config, hf);
            String[] idKeys = {"bos_token_id", "eos_token_id", "pad_token_id"};
            for (int k = 0; k < 3; k++) {
                if (ids[k] == null) {
                    ids[k] = idFrom(cfg.get(idKeys[k]), size);
                }
            }
        }
        return new HfTokenizer(file, hf, vocab, size, ids[0], ids[1], ids[2]);
    }

    /** DJL phones home (an EC2 metadata lookup) unless offline mode is on; turn it on unless the user chose. */
    private static void preferOffline() {
        if (System.getProperty("ai.djl.offline") == null && System.getenv("DJL_OFFLINE") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
    }

    private static JsonNode parse(Path file, byte[] bytes) {
        try {
            return JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            JsonLocation loc = e.getLocation();
            String where = loc == null ? "" : " at line " + loc.getLineNr() + ", column " + loc.getColumnNr();
            throw new CollieException(file + ": malformed JSON" + where + ": " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new CollieException(file + ": cannot read: " + e, e);
        }
    }

    private static JsonNode readJson(Path p, HuggingFaceTokenizer toClose) {
        try {
            JsonNode n = parse(p, Files.readAllBytes(p));
            if (n == null || !n.isObject()) {
                throw new CollieException(p + ": expected a JSON object");
            }
            return n;
        } catch (IOException e) {
            toClose.close();
            throw new CollieException(p + ": cannot read: " + e, e);
        } catch (RuntimeException e) {
            toClose.close();
            throw e;
        }
    }

    /** Token string to id: the model's vocabulary plus added_tokens. */
    private static Map<String, Integer> vocabulary(Path file, JsonNode root) {
        Map<String, Integer> vocab = new HashMap<>();
        JsonNode v = root.path("model").get("vocab");
        if (v != null && v.isObject()) {
            for (Iterator<Map.Entry<String, JsonNode>> it = v.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (!e.getValue().canConvertToInt()) {
                    throw new CollieException(file + ": model.vocab[\"" + e.getKey() + "\"] is not an integer id");
                }
                vocab.put(e.getKey(), e.getValue().intValue());
            }
        } else if (v != null && v.isArray()) {
            // Unigram: [[piece, score], ...], the id is the position
            for (int i = 0; i < v.size(); i++) {
                JsonNode piece = v.get(i);
                if (piece.isArray() && piece.size() > 0) {
                    vocab.putIfAbsent(piece.get(0).asText(), i);
                }
            }
        }
        JsonNode added = root.get("added_tokens");
        if (added != null && added.isArray()) {
            for (JsonNode t : added) {
                if (t.hasNonNull("content") && t.hasNonNull("id")) {
                    vocab.put(t.get("content").asText(), t.get("id").intValue());
                }
            }
        }
        return vocab;
    }

    /** {@code "bos_token": "<s>"} or {@code {"content": "<s>", ...}} to its id; null if absent or unknown. */
    private static Integer tokenIdOf(Path p, String key, JsonNode v, Map<String, Integer> vocab) {
        if (v == null || v.isNull()) {
            return null;
        }
        String token = v.isTextual() ? v.asText() : v.path("content").asText(null);
        if (token == null) {
            return null;
        }
        Integer id = vocab.get(token);
        if (id == null) {
            LOG.warn("{}: {} \"{}\" is not in the vocabulary of tokenizer.json; ignored", p, key, token);
        }
        return id;
    }

    private static Integer idFrom(JsonNode v, int size) {
        if (v != null && v.isArray() && v.size() > 0) {
            v = v.get(0);
        }
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt()) {
            return null;
        }
        int id = v.intValue();
        return id >= 0 && id < size ? id : null;
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        long[] ids = tokenizer.encode(text, addSpecialTokens, false).getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    /** Token ids of {@code text} without special tokens added, with each token's span of the text. */
    Offsets encodeWithOffsets(String text) {
        Encoding e = tokenizer.encode(text, false, false);
        long[] ids = e.getIds();
        CharSpan[] spans = e.getCharTokenSpans();
        int[] out = new int[ids.length];
        int[] starts = new int[ids.length];
        int[] ends = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
            starts[i] = spans[i] == null ? -1 : spans[i].getStart();
            ends[i] = spans[i] == null ? -1 : spans[i].getEnd();
        }
        return new Offsets(out, starts, ends);
    }

    /**
     * Ids with the text each token came from, {@code [starts[i], ends[i])} in code points (as the Rust library
     * counts; -1 for a token of no text).
     */
    record Offsets(int[] ids, int[] starts, int[] ends) {
        /** The first token whose span holds code point {@code c} (the Rust library's char_to_token), or -1. */
        int tokenAt(int c) {
            for (int i = 0; i < ids.length; i++) {
                if (starts[i] <= c && c < ends[i]) {
                    return i;
                }
            }
            return -1;
        }
    }

    /**
     * The chat template of this tokenizer's directory ({@code chat_template.jinja}, or {@code "chat_template"} in
     * tokenizer_config.json), read on first use; empty when there is none.
     *
     * @throws dev.collie.core.CollieException if the files that hold it are malformed
     */
    public Optional<ChatTemplate> chatTemplate() {
        Optional<ChatTemplate> t = chatTemplate;
        if (t == null) {
            synchronized (this) {
                t = chatTemplate;
                if (t == null) {
                    t = ChatTemplate.load(this);
                    chatTemplate = t;
                }
            }
        }
        return t;
    }

    @Override
    public Optional<ChatFormat> chat() {
        return chatTemplate().map(t -> t);
    }

    /**
     * The text of {@code ids}. An id at or beyond the vocabulary decodes to nothing, as in transformers: published
     * models pad their embedding table past the tokenizer (Qwen2.5, ChatGLM3) and may emit such an id.
     *
     * @throws CollieException for a negative id
     */
    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        long[] l = new long[ids.length];
        int n = 0;
        for (int id : ids) {
            if (id < 0) {
                throw new CollieException(file + ": cannot decode token id " + id + " (ids are >= 0)");
            }
            if (id < vocabSize) {
                l[n++] = id;
            }
        }
        return tokenizer.decode(Arrays.copyOf(l, n), skipSpecialTokens);
    }

    /**
     * Refuses this tokenizer for a model with {@code modelVocabSize} ids when it has an id at or beyond that (in its
     * vocabulary or an added token): such an id would index past the model's embedding. The message names the
     * largest id, its token and the model's vocab_size, said to come from {@code modelSource}.
     */
    public void requireFits(int modelVocabSize, String modelSource) {
        if (vocabSize > modelVocabSize) {
            throw new CollieException(file + ": " + largestId() + " is outside the model's vocabulary: vocab_size is "
                    + modelVocabSize + " (" + modelSource + ")");
        }
    }

    /** {@code token id 1000000000 ("<big>")}: the largest id of this tokenizer, with its token. */
    public String largestId() {
        int id = vocabSize - 1;
        String token = vocab.entrySet().stream().filter(e -> e.getValue() == id).map(Map.Entry::getKey).findFirst()
                .orElse("?");
        return "token id " + id + " (\"" + token + "\")";
    }

    /** The tokens (strings) of {@code text}, as the tokenizer splits it. */
    public String[] tokens(String text, boolean addSpecialTokens) {
        return tokenizer.encode(text, addSpecialTokens, false).getTokens();
    }

    /** Number of ids: the model's vocabulary plus added tokens (HF's {@code len(tokenizer)}). */
    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public OptionalInt bosId() {
        return bos == null ? OptionalInt.empty() : OptionalInt.of(bos);
    }

    @Override
    public OptionalInt eosId() {
        return eos == null ? OptionalInt.empty() : OptionalInt.of(eos);
    }

    @Override
    public int padId() {
        if (pad != null) {
            return pad;
        }
        return eos != null ? eos : 0;
    }

    /** The id of token string {@code token} (vocabulary or added token), if any. */
    public OptionalInt tokenToId(String token) {
        Integer id = vocab.get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /** The tokenizer.json this was loaded from. */
    public Path path() {
        return file;
    }

    /** Frees the native tokenizer; later calls fail. */
    @Override
    public void close() {
        tokenizer.close();
    }

    @Override
    public String toString() {
        return "HfTokenizer[" + file + ", vocab=" + vocabSize + "]";
    }
}
