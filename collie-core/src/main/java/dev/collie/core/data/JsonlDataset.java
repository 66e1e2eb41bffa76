package dev.collie.core.data;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.CollieException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;

/**
 * A fine-tuning data set read from a JSON Lines file, with CoLLiE's sample forms:
 * <ul>
 *   <li>{@code {"text": "..."}}: labels equal the ids, so every token is trained on;</li>
 *   <li>{@code {"input": "...", "output": "..."}}: the ids of {@code input + output}, with the input part's labels
 *       set to {@link Sample#IGNORE_INDEX}, so only the output is trained on;</li>
 *   <li>{@code {"messages": [{"role": "system"|"user"|"assistant"|..., "content": "..."}, ...]}}: a conversation,
 *       rendered with the tokenizer's chat template ({@link Tokenizer#chat()}) and tokenized without adding special
 *       tokens; only the assistant's tokens (and the end-of-turn token the template puts after each) are trained
 *       on. Any role is passed to the template, which decides; other keys of a message are ignored;</li>
 *   <li>{@code {"tokens": [...], "labels": [...]}}: already tokenized; {@code labels} is optional (it defaults to
 *       the tokens; JSON {@code null} counts as absent) and no tokenizer is needed.</li>
 * </ul>
 * When a line has several of these keys, {@code tokens} wins over {@code messages}, which wins over
 * {@code input}/{@code output}, which win over {@code text}; other keys are ignored. Blank lines are skipped. A file
 * whose first character is {@code [} is read as one JSON array of such objects instead. With a tokenizer that has an
 * EOS token and {@code appendEos}, EOS is appended to the text forms (unless the tokenizer already put it last), not
 * to {@code messages}, whose end is the template's. Samples longer than {@code maxLength} are cut on the right.
 *
 * <p>The whole file is read, tokenized and checked when it is loaded, so a bad line is reported before training
 * starts, as a {@link CollieException} naming the file and the 1-based line. The samples are kept in flat
 * {@code int} arrays: labels that follow the ids (all of them, or all after a masked prefix) cost no memory.
 */
public final class JsonlDataset implements Dataset {
    private static final Logger LOG = LoggerFactory.getLogger(JsonlDataset.class);
    private static final String FORMS =
            "expected one of {\"text\"}, {\"input\",\"output\"}, {\"messages\"} or {\"tokens\"}";

    private final Path source;
    private final int[] ids;
    private final int[] offsets;
    /** {@code >= 0}: that many leading labels are ignored, the rest equal the ids; {@code < 0}: explicit entry {@code -r-1}. */
    private final int[] labelRef;
    private final int[] explicitLabels;
    private final int[] explicitOffsets;

    private JsonlDataset(Path source, int[] ids, int[] offsets, int[] labelRef, int[] explicitLabels,
                         int[] explicitOffsets) {
        this.source = source;
        this.ids = ids;
        this.offsets = offsets;
        this.labelRef = labelRef;
        this.explicitLabels = explicitLabels;
        this.explicitOffsets = explicitOffsets;
    }

    /**
     * Reads and tokenizes {@code file}, appending EOS to the text forms where the tokenizer has one.
     *
     * @param tokenizerOrNull needed only by the {@code text} and {@code input}/{@code output} forms
     * @param maxLength       samples are cut to this many tokens; {@code <= 0} keeps them whole
     * @param vocabSizeOrZero when {@code > 0}, every id (and every label but {@code -100}) must be below it
     */
    public static JsonlDataset load(Path file, Tokenizer tokenizerOrNull, int maxLength, int vocabSizeOrZero) {
        return load(file, tokenizerOrNull, maxLength, vocabSizeOrZero, true);
    }

    /** As {@link #load(Path, Tokenizer, int, int)}, choosing whether EOS is appended to the text forms. */
    public static JsonlDataset load(Path file, Tokenizer tokenizerOrNull, int maxLength, int vocabSizeOrZero,
                                    boolean appendEos) {
        Loader loader = new Loader(file, tokenizerOrNull, maxLength, vocabSizeOrZero, appendEos);
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16)) {
            if (startsWithArray(in)) {
                loader.readArray(in);
            } else {
                loader.readLines(in);
            }
        } catch (NoSuchFileException e) {
            throw new CollieException("data file not found: " + file);
        } catch (IOException e) {
            throw new CollieException("cannot read data file " + file + ": " + e.getMessage(), e);
        }
        JsonlDataset ds = loader.build();
        LOG.info("{}: {} samples, {} tokens{}", file, ds.size(), ds.tokenCount(),
                loader.truncated > 0 ? ", " + loader.truncated + " cut to " + maxLength + " tokens" : "");
        if (loader.noLoss > 0) {
            LOG.warn("{}: {} samples have no trained label (e.g. the input part fills max_length, or a conversation"
                    + " has no assistant turn)", file, loader.noLoss);
        }
        return ds;
    }

    @Override
    public int size() {
        return labelRef.length;
    }

    @Override
    public Sample get(int i) {
        int from = offsets[i];
        int to = offsets[i + 1];
        int[] sampleIds = Arrays.copyOfRange(ids, from, to);
        int ref = labelRef[i];
        int[] labels;
        if (ref >= 0) {
            labels = sampleIds.clone();
            Arrays.fill(labels, 0, Math.min(ref, labels.length), Sample.IGNORE_INDEX);
        } else {
            int e = -ref - 1;
            labels = Arrays.copyOfRange(explicitLabels, explicitOffsets[e], explicitOffsets[e + 1]);
        }
        return new Sample(sampleIds, labels);
    }

    /** The number of tokens of sample {@code i}, without building it. */
    public int length(int i) {
        return offsets[i + 1] - offsets[i];
    }

    /** The number of tokens of all samples together. */
    public long tokenCount() {
        return offsets[offsets.length - 1];
    }

    /** The file the samples were read from. */
    public Path source() {
        return source;
    }

    private static boolean startsWithArray(InputStream in) throws IOException {
        in.mark(64);
        try {
            int b;
            int skipped = 0;
            while ((b = in.read()) != -1 && skipped < 60) {
                skipped++;
                if (b == 0xEF || b == 0xBB || b == 0xBF || Character.isWhitespace(b)) {
                    continue; // UTF-8 byte order mark or leading white space
                }
                return b == '[';
            }
            return false;
        } finally {
            in.reset();
        }
    }

    /** Builds the flat arrays, one JSON object at a time. */
    private static final class Loader {
        private final Path file;
        private final Tokenizer tokenizer;
        private final int maxLength;
        private final int vocabSize;
        private final boolean appendEos;
        /** One JSON value a line: what follows it on the line is an error. */
        private final ObjectMapper lineMapper = new ObjectMapper()
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
        /** Values read one by one from a JSON array, the rest of the array following each. */
        private final ObjectMapper arrayMapper = new ObjectMapper();
        private final IntArrayBuilder ids = new IntArrayBuilder(1 << 12);
        private final IntArrayBuilder offsets = new IntArrayBuilder(1 << 10);
        private final IntArrayBuilder labelRef = new IntArrayBuilder(1 << 10);
        private final IntArrayBuilder explicitLabels = new IntArrayBuilder(16);
        private final IntArrayBuilder explicitOffsets = new IntArrayBuilder(16);
        int truncated;
        int noLoss;

        Loader(Path file, Tokenizer tokenizer, int maxLength, int vocabSize, boolean appendEos) {
            this.file = file;
            this.tokenizer = tokenizer;
            this.maxLength = maxLength;
            this.vocabSize = vocabSize;
            this.appendEos = appendEos;
            offsets.add(0);
            explicitOffsets.add(0);
        }

        JsonlDataset build() {
            if (labelRef.size() == 0) {
                throw new CollieException(file + ": the data file holds no samples");
            }
            return new JsonlDataset(file, ids.toArray(), offsets.toArray(), labelRef.toArray(),
                    explicitLabels.toArray(), explicitOffsets.toArray());
        }

        void readLines(InputStream in) throws IOException {
            Utf8Lines.read(in, file, (line, lineNo) -> {
                if (line.isBlank()) {
                    return;
                }
                JsonNode node;
                try {
                    node = lineMapper.readTree(line);
                } catch (JsonProcessingException e) {
                    throw new CollieException(file + ":" + lineNo + ": not valid JSON"
                            + column(e.getLocation()) + ": " + firstLine(e.getOriginalMessage()), e);
                }
                add(node, lineNo);
            });
        }

        void readArray(InputStream in) throws IOException {
            int line = 1;
            try (JsonParser p = arrayMapper.createParser(in)) {
                if (p.nextToken() != JsonToken.START_ARRAY) {
                    throw new CollieException(file + ":1: expected a JSON array of samples");
                }
                while (true) {
                    JsonToken t = p.nextToken();
                    line = p.currentTokenLocation().getLineNr();
                    if (t == null) {
                        throw new CollieException(file + ":" + line + ": the JSON array is not closed");
                    }
                    if (t == JsonToken.END_ARRAY) {
                        break;
                    }
                    JsonNode node = arrayMapper.readTree(p);
                    add(node, line);
                }
                if (p.nextToken() != null) {
                    throw new CollieException(file + ":" + p.currentTokenLocation().getLineNr()
                            + ": unexpected content after the JSON array");
                }
            } catch (JsonProcessingException e) {
                JsonLocation loc = e.getLocation();
                int at = loc != null && loc.getLineNr() > 0 ? loc.getLineNr() : line;
                throw new CollieException(file + ":" + at + ": not valid JSON" + column(loc) + ": "
                        + firstLine(e.getOriginalMessage()), e);
            }
        }

        private static String column(JsonLocation loc) {
            return loc != null && loc.getColumnNr() > 0 ? " (column " + loc.getColumnNr() + ")" : "";
        }

        /** Jackson's message, first line only, without its references to the (unnamed) source. */
        private static String firstLine(String s) {
            if (s == null) {
                return "";
            }
            int nl = s.indexOf('\n');
            String line = nl < 0 ? s : s.substring(0, nl);
            return line.replaceAll("\\s*\\(start marker at \\[[^\\]]*\\]\\)", "")
                    .replaceAll("\\s*\\[Source: [^\\]]*\\]", "");
        }

        private CollieException error(int line, String message) {
            return new CollieException(file + ":" + line + ": " + message);
        }

        void add(JsonNode node, int line) {
            if (node == null || !node.isObject()) {
                throw error(line, FORMS + ", got " + describe(node));
            }
            int[] sampleIds;
            int[] labels = null; // null: labels equal the ids after maskedPrefix ignored positions
            int maskedPrefix = 0;
            if (node.has("tokens")) {
                sampleIds = intArray(node.get("tokens"), "tokens", line, false);
                JsonNode l = node.get("labels");
                if (l != null && !l.isNull()) {
                    labels = intArray(l, "labels", line, true);
                    if (labels.length != sampleIds.length) {
                        throw error(line, "\"labels\" has " + labels.length + " entries but \"tokens\" has "
                                + sampleIds.length + "; they must be the same length");
                    }
                }
            } else if (node.has("messages")) {
                List<ChatMessage> messages = messages(node.get("messages"), line);
                ChatEncoding chat = encodeChat(messages, line);
                sampleIds = checkTokenizerIds(chat.ids(), line);
                labels = chat.labels();
            } else if (node.has("input") && node.has("output")) {
                String input = string(node, "input", line);
                String output = string(node, "output", line);
                Tokenizer tok = requireTokenizer(line, "{\"input\",\"output\"}");
                sampleIds = checkTokenizerIds(withEos(tok, tok.encode(input + output, true)), line);
                int[] outIds = tok.encode(output, false);
                int nOutput = outIds.length;
                OptionalInt eos = tok.eosId();
                if (eos.isPresent() && sampleIds.length > 0 && sampleIds[sampleIds.length - 1] == eos.getAsInt()
                        && (outIds.length == 0 || outIds[outIds.length - 1] != eos.getAsInt())) {
                    nOutput++; // the EOS ending the sample is trained on, as part of the output
                }
                maskedPrefix = Math.max(0, sampleIds.length - nOutput);
            } else if (node.has("text")) {
                String text = string(node, "text", line);
                Tokenizer tok = requireTokenizer(line, "{\"text\"}");
                sampleIds = checkTokenizerIds(withEos(tok, tok.encode(text, true)), line);
            } else {
                List<String> keys = new ArrayList<>();
                node.fieldNames().forEachRemaining(keys::add);
                throw error(line, FORMS + ", got keys " + keys);
            }
            if (sampleIds.length == 0) {
                throw error(line, "the sample has no tokens");
            }
            if (maxLength > 0 && sampleIds.length > maxLength) {
                sampleIds = Arrays.copyOf(sampleIds, maxLength);
                if (labels != null) {
                    labels = Arrays.copyOf(labels, maxLength);
                }
                truncated++;
            }
            store(sampleIds, labels, maskedPrefix);
        }

        private void store(int[] sampleIds, int[] labels, int maskedPrefix) {
            if (labels != null) {
                // Labels that are "the ids after a masked prefix" need no storage of their own.
                int k = 0;
                while (k < labels.length && labels[k] == Sample.IGNORE_INDEX) {
                    k++;
                }
                boolean follows = true;
                for (int j = k; j < labels.length && follows; j++) {
                    follows = labels[j] == sampleIds[j];
                }
                if (follows) {
                    maskedPrefix = k;
                    labels = null;
                }
            }
            if (labels == null) {
                maskedPrefix = Math.min(maskedPrefix, sampleIds.length);
                if (maskedPrefix == sampleIds.length) {
                    noLoss++;
                }
                labelRef.add(maskedPrefix);
            } else {
                int entry = explicitOffsets.size() - 1;
                labelRef.add(-entry - 1);
                explicitLabels.addAll(labels);
                explicitOffsets.add(explicitLabels.size());
            }
            ids.addAll(sampleIds);
            offsets.add(ids.size());
        }

        /** The {@code "messages"} array as messages; each must be an object with a string role and content. */
        private List<ChatMessage> messages(JsonNode v, int line) {
            if (!v.isArray() || v.isEmpty()) {
                throw error(line, "\"messages\" must be a non-empty array of {\"role\", \"content\"} objects, got "
                        + describe(v));
            }
            List<ChatMessage> out = new ArrayList<>(v.size());
            for (int j = 0; j < v.size(); j++) {
                JsonNode m = v.get(j);
                if (!m.isObject()) {
                    throw error(line, "\"messages\"[" + j + "] must be an object {\"role\", \"content\"}, got "
                            + describe(m));
                }
                String[] fields = new String[2];
                String[] keys = {"role", "content"};
                for (int k = 0; k < 2; k++) {
                    JsonNode f = m.get(keys[k]);
                    if (f == null || !f.isTextual()) {
                        throw error(line, "\"messages\"[" + j + "]." + keys[k] + " must be a string, got "
                                + describe(f));
                    }
                    fields[k] = f.textValue();
                }
                out.add(new ChatMessage(fields[0], fields[1]));
            }
            return out;
        }

        private ChatEncoding encodeChat(List<ChatMessage> messages, int line) {
            Tokenizer tok = requireTokenizer(line, "{\"messages\"}");
            ChatFormat chat = tok.chat().orElseThrow(() -> error(line, "a {\"messages\"} sample needs a chat"
                    + " template, and the tokenizer " + tok + " has none: add \"chat_template\" to the"
                    + " tokenizer_config.json next to its tokenizer.json"));
            try {
                return chat.encode(messages, false);
            } catch (CollieException e) {
                throw new CollieException(file + ":" + line + ": " + e.getMessage(), e);
            }
        }

        private int[] withEos(Tokenizer tok, int[] encoded) {
            OptionalInt eos = tok.eosId();
            if (!appendEos || eos.isEmpty()
                    || (encoded.length > 0 && encoded[encoded.length - 1] == eos.getAsInt())) {
                return encoded;
            }
            int[] out = Arrays.copyOf(encoded, encoded.length + 1);
            out[encoded.length] = eos.getAsInt();
            return out;
        }

        private Tokenizer requireTokenizer(int line, String form) {
            if (tokenizer == null) {
                throw error(line, "a " + form + " sample needs a tokenizer, and none was given"
                        + " (only {\"tokens\"} samples work without one)");
            }
            return tokenizer;
        }

        private int[] checkTokenizerIds(int[] encoded, int line) {
            for (int id : encoded) {
                if (id < 0 || (vocabSize > 0 && id >= vocabSize)) {
                    throw error(line, "the tokenizer produced token id " + id + ", outside the vocabulary "
                            + range());
                }
            }
            return encoded;
        }

        private String range() {
            return vocabSize > 0 ? "[0, " + vocabSize + ")" : "(ids must be >= 0)";
        }

        private String string(JsonNode node, String key, int line) {
            JsonNode v = node.get(key);
            if (!v.isTextual()) {
                throw error(line, "\"" + key + "\" must be a string, got " + describe(v));
            }
            return v.textValue();
        }

        private int[] intArray(JsonNode v, String key, int line, boolean labels) {
            if (!v.isArray()) {
                throw error(line, "\"" + key + "\" must be an array of integers, got " + describe(v));
            }
            int[] out = new int[v.size()];
            for (int j = 0; j < out.length; j++) {
                JsonNode e = v.get(j);
                if (!e.isIntegralNumber()) {
                    throw error(line, "\"" + key + "\"[" + j + "] must be an integer, got " + describe(e));
                }
                boolean fits = e.canConvertToInt();
                int id = fits ? e.intValue() : 0;
                boolean ok = fits && (labels && id == Sample.IGNORE_INDEX
                        || id >= 0 && (vocabSize <= 0 || id < vocabSize));
                if (!ok) {
                    String what = labels ? "label " : "token id ";
                    throw error(line, what + e.asText() + " at \"" + key + "\"[" + j + "] is out of range "
                            + range() + (labels ? " (or -100 for no loss)" : ""));
                }
                out[j] = id;
            }
            return out;
        }

        private static String describe(JsonNode v) {
            if (v == null || v.isMissingNode()) {
                return "nothing";
            }
            String text = v.toString();
            if (text.length() > 40) {
                text = text.substring(0, 37) + "...";
            }
            return switch (v.getNodeType()) {
                case ARRAY -> "an array " + text;
                case OBJECT -> "an object " + text;
                case STRING -> "a string " + text;
                case NUMBER -> "the number " + text;
                case BOOLEAN -> "the boolean " + text;
                case NULL -> "null";
                default -> text;
            };
        }
    }
}
