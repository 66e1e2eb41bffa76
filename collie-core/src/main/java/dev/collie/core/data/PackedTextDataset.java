package dev.collie.core.data;

import dev.collie.core.CollieException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.OptionalInt;

/**
 * A pre-training data set from a plain UTF-8 text file, packed into rows of exactly {@code seqLen} tokens.
 *
 * <p>Documents are separated by blank lines. Each document is tokenized with the tokenizer's special tokens
 * (e.g. a leading BOS) and followed by EOS where the tokenizer has one; the documents are concatenated in file
 * order and cut into consecutive rows of {@code seqLen} tokens, with labels equal to the ids. The tokens after the
 * last full row are dropped. A document longer than {@value #CHUNK_CHARS} characters is tokenized in pieces cut at
 * line ends (or, inside a very long line, at white space), the pieces after the first without special tokens,
 * so that no single tokenizer call sees an unbounded text.
 */
public final class PackedTextDataset implements Dataset {
    private static final Logger LOG = LoggerFactory.getLogger(PackedTextDataset.class);
    /** The most characters passed to one tokenizer call (a piece may exceed it by one line end). */
    static final int CHUNK_CHARS = 1 << 16;

    private final Path source;
    private final int[] tokens;
    private final int seqLen;
    private final long droppedTokens;

    private PackedTextDataset(Path source, int[] tokens, int seqLen, long droppedTokens) {
        this.source = source;
        this.tokens = tokens;
        this.seqLen = seqLen;
        this.droppedTokens = droppedTokens;
    }

    /** Reads, tokenizes and packs {@code txtFile} into rows of {@code seqLen} tokens. */
    public static PackedTextDataset load(Path txtFile, Tokenizer tok, int seqLen) {
        return load(txtFile, tok, seqLen, 0);
    }

    /** As {@link #load(Path, Tokenizer, int)}; when {@code vocabSizeOrZero > 0} every id must be below it. */
    public static PackedTextDataset load(Path txtFile, Tokenizer tok, int seqLen, int vocabSizeOrZero) {
        if (tok == null) {
            throw new CollieException(txtFile + ": a plain-text data file needs a tokenizer, and none was given");
        }
        if (seqLen < 1) {
            throw new CollieException("seq_len must be >= 1 to pack " + txtFile + ", got " + seqLen);
        }
        Packer packer = new Packer(txtFile, tok, vocabSizeOrZero);
        try (InputStream in = Files.newInputStream(txtFile)) {
            Utf8Lines.read(in, txtFile, packer::line);
            packer.endDocument();
        } catch (NoSuchFileException e) {
            throw new CollieException("data file not found: " + txtFile);
        } catch (IOException e) {
            throw new CollieException("cannot read data file " + txtFile + ": " + e.getMessage(), e);
        }
        int total = packer.tokens.size();
        if (total < seqLen) {
            throw new CollieException(txtFile + ": the text yields " + total + " tokens, fewer than seq_len "
                    + seqLen + ", so not even one row can be packed");
        }
        int rows = total / seqLen;
        int[] kept = packer.tokens.toArray(rows * seqLen);
        long dropped = total - (long) rows * seqLen;
        LOG.info("{}: {} tokens in {} documents packed into {} rows of {} ({} tokens dropped)", txtFile, total,
                packer.documents, rows, seqLen, dropped);
        return new PackedTextDataset(txtFile, kept, seqLen, dropped);
    }

    @Override
    public int size() {
        return tokens.length / seqLen;
    }

    @Override
    public Sample get(int i) {
        if (i < 0 || i >= size()) {
            throw new IndexOutOfBoundsException("row " + i + " of " + size());
        }
        int[] ids = Arrays.copyOfRange(tokens, i * seqLen, (i + 1) * seqLen);
        return new Sample(ids, ids.clone());
    }

    /** The length of every row. */
    public int seqLen() {
        return seqLen;
    }

    /** The tokens after the last full row, which no row holds. */
    public long droppedTokens() {
        return droppedTokens;
    }

    /** The file the text was read from. */
    public Path source() {
        return source;
    }

    /** Gathers a document's lines into bounded pieces and tokenizes them. */
    private static final class Packer {
        private final Path file;
        private final Tokenizer tok;
        private final int vocabSize;
        final IntArrayBuilder tokens = new IntArrayBuilder(1 << 16);
        private final StringBuilder piece = new StringBuilder();
        private int pieceLine;
        private boolean docStarted;
        int documents;

        Packer(Path file, Tokenizer tok, int vocabSize) {
            this.file = file;
            this.tok = tok;
            this.vocabSize = vocabSize;
        }

        void line(String line, int lineNo) {
            if (line.isBlank()) {
                endDocument();
                return;
            }
            if (piece.length() == 0) {
                pieceLine = lineNo;
            } else {
                piece.append('\n');
                if (piece.length() + line.length() > CHUNK_CHARS) {
                    flush();
                    pieceLine = lineNo;
                }
            }
            int from = 0;
            while (piece.length() + line.length() - from > CHUNK_CHARS) {
                int cut = cutPoint(line, from, CHUNK_CHARS - piece.length());
                piece.append(line, from, cut);
                flush();
                pieceLine = lineNo;
                from = cut;
            }
            piece.append(line, from, line.length());
        }

        /**
         * Where to end a piece of an over-long line taking at most {@code room} characters from {@code from}:
         * after the last white space in the second half of that range, else at its end, never inside a pair.
         */
        private static int cutPoint(String line, int from, int room) {
            int limit = from + room;
            for (int i = limit; i > from + room / 2; i--) {
                if (Character.isWhitespace(line.charAt(i - 1))) {
                    return i;
                }
            }
            return Character.isHighSurrogate(line.charAt(limit - 1)) ? limit - 1 : limit;
        }

        void endDocument() {
            flush();
            if (!docStarted) {
                return;
            }
            OptionalInt eos = tok.eosId();
            if (eos.isPresent() && (tokens.size() == 0 || tokens.get(tokens.size() - 1) != eos.getAsInt())) {
                check(eos.getAsInt(), pieceLine);
                tokens.add(eos.getAsInt());
            }
            docStarted = false;
            documents++;
        }

        private void flush() {
            if (piece.length() == 0) {
                return;
            }
            int[] ids = tok.encode(piece.toString(), !docStarted);
            for (int id : ids) {
                check(id, pieceLine);
            }
            tokens.addAll(ids);
            piece.setLength(0);
            docStarted = true;
        }

        private void check(int id, int line) {
            if (id < 0 || (vocabSize > 0 && id >= vocabSize)) {
                throw new CollieException(file + ":" + line + ": the tokenizer produced token id " + id
                        + ", outside the vocabulary " + (vocabSize > 0 ? "[0, " + vocabSize + ")" : "(ids >= 0)"));
            }
        }
    }
}
