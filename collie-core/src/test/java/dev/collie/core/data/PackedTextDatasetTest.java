package dev.collie.core.data;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.stream.IntStream;

import static dev.collie.core.data.CharTokenizer.BOS;
import static dev.collie.core.data.CharTokenizer.EOS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PackedTextDatasetTest {
    @TempDir
    Path dir;

    private Path write(String text) throws IOException {
        Path file = dir.resolve("corpus.txt");
        Files.writeString(file, text);
        return file;
    }

    private static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }

    @Test
    void documentsAreJoinedWithEosAndPackedIntoFullRows() throws IOException {
        // Two documents separated by blank lines; the second has two lines.
        Path file = write("abcd\n\n\nef\ngh\n");
        PackedTextDataset ds = PackedTextDataset.load(file, new CharTokenizer(), 4);
        int[] stream = concat(new int[] {BOS}, CharTokenizer.ids("abcd"), new int[] {EOS, BOS},
                CharTokenizer.ids("ef\ngh"), new int[] {EOS}); // 6 + 7 = 13 tokens
        assertEquals(3, ds.size()); // 13 / 4, one token dropped
        assertEquals(1, ds.droppedTokens());
        for (int r = 0; r < 3; r++) {
            Sample s = ds.get(r);
            assertArrayEquals(Arrays.copyOfRange(stream, 4 * r, 4 * r + 4), s.inputIds());
            assertArrayEquals(s.inputIds(), s.labels());
        }
    }

    @Test
    void everyRowHasExactlySeqLenTokens() throws IOException {
        String text = String.join("\n\n", Collections.nCopies(20, "hello world"));
        PackedTextDataset ds = PackedTextDataset.load(write(text), new CharTokenizer(), 7);
        assertEquals(20 * 13 / 7, ds.size());
        for (int r = 0; r < ds.size(); r++) {
            assertEquals(7, ds.get(r).length());
        }
        assertEquals(7, ds.seqLen());
    }

    @Test
    void tokenizerWithoutEosJoinsDocumentsDirectly() throws IOException {
        PackedTextDataset ds = PackedTextDataset.load(write("ab\n\ncd"), new CharTokenizer(false, false), 2);
        assertEquals(2, ds.size());
        assertArrayEquals(CharTokenizer.ids("ab"), ds.get(0).inputIds());
        assertArrayEquals(CharTokenizer.ids("cd"), ds.get(1).inputIds());
    }

    @Test
    void textShorterThanOneRowIsRejected() throws IOException {
        Path file = write("ab\n");
        CollieException e = assertThrows(CollieException.class,
                () -> PackedTextDataset.load(file, new CharTokenizer(), 10));
        assertEquals(file + ": the text yields 4 tokens, fewer than seq_len 10, so not even one row can be packed",
                e.getMessage());
    }

    @Test
    void longDocumentIsTokenizedInBoundedPieces() throws IOException {
        int chunk = PackedTextDataset.CHUNK_CHARS;
        String longLine = "x".repeat(chunk * 2 + 10); // one line with no white space
        String manyLines = String.join("\n", Collections.nCopies(6000, "words in a line"));
        CharTokenizer tok = new CharTokenizer();
        PackedTextDataset ds = PackedTextDataset.load(write(longLine + "\n\n" + manyLines), tok, 1);
        int expected = 1 + longLine.length() + 1 + 1 + manyLines.length() + 1;
        assertEquals(expected, ds.size());
        assertTrue(tok.encodedLengths.stream().allMatch(n -> n <= chunk + 1), tok.encodedLengths.toString());
        assertTrue(tok.encodedLengths.size() > 3);
        // Only the first piece of each document carries BOS.
        long bosCount = IntStream.range(0, ds.size()).filter(i -> ds.get(i).inputIds()[0] == BOS).count();
        assertEquals(2, bosCount);
    }

    @Test
    void idsOutsideTheVocabularyAreReportedWithFileAndLine() throws IOException {
        Path file = write("ab\n\nc\u00ff\n");
        CollieException e = assertThrows(CollieException.class,
                () -> PackedTextDataset.load(file, new CharTokenizer(), 2, 200));
        assertTrue(e.getMessage().startsWith(file + ":3: the tokenizer produced token id 258"), e.getMessage());
    }

    @Test
    void packingNeedsATokenizer() throws IOException {
        Path file = write("abc");
        assertThrows(CollieException.class, () -> PackedTextDataset.load(file, null, 2));
    }
}
