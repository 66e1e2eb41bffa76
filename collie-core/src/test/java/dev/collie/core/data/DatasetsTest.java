package dev.collie.core.data;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DatasetsTest {
    @TempDir
    Path dir;

    /** A data set of {@code n} one-token samples whose token is the index. */
    static Dataset numbered(int n) {
        List<Sample> samples = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            samples.add(Sample.causal(new int[] {i}));
        }
        return Datasets.of(samples);
    }

    private static List<Integer> tokens(Dataset ds) {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < ds.size(); i++) {
            out.add(ds.get(i).inputIds()[0]);
        }
        return out;
    }

    @Test
    void openChoosesTheReaderByExtension() throws IOException {
        Path jsonl = Files.writeString(dir.resolve("a.JSONL"), "{\"text\": \"abcdef\"}\n");
        Path json = Files.writeString(dir.resolve("b.json"), "[{\"tokens\": [1, 2, 3]}]");
        Path txt = Files.writeString(dir.resolve("c.txt"), "abcdefgh\n");
        Dataset a = Datasets.open(jsonl, new CharTokenizer(), 4, 0);
        assertInstanceOf(JsonlDataset.class, a);
        assertEquals(4, a.get(0).length()); // cut to seq_len
        assertInstanceOf(JsonlDataset.class, Datasets.open(json, null, 4, 0));
        Dataset c = Datasets.open(txt, new CharTokenizer(), 4, 0);
        assertInstanceOf(PackedTextDataset.class, c);
        assertEquals(2, c.size()); // 10 tokens into rows of 4
    }

    @Test
    void openRejectsAnUnknownExtension() throws IOException {
        Path csv = Files.writeString(dir.resolve("data.csv"), "a,b\n");
        CollieException e = assertThrows(CollieException.class, () -> Datasets.open(csv, null, 4, 0));
        assertTrue(e.getMessage().contains(csv.toString()) && e.getMessage().contains(".jsonl"), e.getMessage());
        assertThrows(CollieException.class, () -> Datasets.open(dir, null, 4, 0));
    }

    @Test
    void splitIsDeterministicDisjointAndCovering() {
        Dataset ds = numbered(100);
        Datasets.Split a = Datasets.split(ds, 0.1, 7);
        Datasets.Split b = Datasets.split(ds, 0.1, 7);
        assertEquals(10, a.eval().size());
        assertEquals(90, a.train().size());
        assertEquals(tokens(a.eval()), tokens(b.eval()));
        Set<Integer> all = new TreeSet<>(tokens(a.train()));
        all.addAll(tokens(a.eval()));
        assertEquals(100, all.size());
        assertNotEquals(tokens(a.eval()), tokens(Datasets.split(ds, 0.1, 8).eval()));
    }

    @Test
    void splitKeepsTheOriginalOrderWithinEachPart() {
        Datasets.Split s = Datasets.split(numbered(50), 0.2, 1);
        List<Integer> train = tokens(s.train());
        List<Integer> sorted = new ArrayList<>(train);
        sorted.sort(null);
        assertEquals(sorted, train);
    }

    @Test
    void smallPositiveFractionStillTakesOneSample() {
        Datasets.Split s = Datasets.split(numbered(5), 0.01, 0);
        assertEquals(1, s.eval().size());
        assertEquals(0, Datasets.split(numbered(5), 0.0, 0).eval().size());
    }

    @Test
    void splitRejectsAFractionThatLeavesNothingToTrain() {
        assertThrows(CollieException.class, () -> Datasets.split(numbered(1), 0.5, 0));
        assertThrows(CollieException.class, () -> Datasets.split(numbered(10), 1.0, 0));
        assertThrows(CollieException.class, () -> Datasets.split(numbered(10), -0.1, 0));
    }
}
