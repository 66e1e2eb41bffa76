package dev.collie.core.data;

import dev.collie.core.CollieException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/** Opening data files by kind, splitting off an evaluation set, and simple views of data sets. */
public final class Datasets {
    private Datasets() {
    }

    /** A data set split in two: the training part and the evaluation part. */
    public record Split(Dataset train, Dataset eval) {
    }

    /**
     * Opens a data file by its extension: {@code .jsonl} or {@code .json} as a {@link JsonlDataset} with samples
     * cut to {@code seqLen}, {@code .txt} as a {@link PackedTextDataset} of rows of {@code seqLen} tokens.
     *
     * @param tok       may be null for a JSONL file of {@code {"tokens"}} samples
     * @param vocabSize when {@code > 0}, every token id must be below it
     */
    public static Dataset open(Path file, Tokenizer tok, int seqLen, int vocabSize) {
        String name = file.getFileName() == null ? file.toString() : file.getFileName().toString();
        String lower = name.toLowerCase(Locale.ROOT);
        if (Files.isDirectory(file)) {
            throw new CollieException("data path " + file + " is a directory; expected a .jsonl, .json or .txt file");
        }
        if (lower.endsWith(".jsonl") || lower.endsWith(".json")) {
            return JsonlDataset.load(file, tok, seqLen, vocabSize);
        }
        if (lower.endsWith(".txt")) {
            return PackedTextDataset.load(file, tok, seqLen, vocabSize);
        }
        throw new CollieException("data file " + file + " has an unsupported extension; expected .jsonl or .json"
                + " (JSON samples) or .txt (plain text for pre-training)");
    }

    /**
     * Splits {@code ds} at random, but deterministically for a given {@code seed}: {@code evalFraction} of the
     * samples (rounded, at least one when the fraction is above zero) go to the evaluation part, the rest to the
     * training part. Each part keeps the samples in their original order.
     */
    public static Split split(Dataset ds, double evalFraction, long seed) {
        if (!(evalFraction >= 0.0 && evalFraction < 1.0)) {
            throw new CollieException("eval fraction must be in [0, 1), got " + evalFraction);
        }
        int n = ds.size();
        int nEval = (int) Math.round(n * evalFraction);
        if (evalFraction > 0 && nEval == 0) {
            nEval = 1;
        }
        if (nEval >= n && n > 0) {
            throw new CollieException("eval fraction " + evalFraction + " of " + n
                    + " samples leaves no sample to train on");
        }
        int[] perm = permutation(n, new Random(seed));
        int[] eval = Arrays.copyOfRange(perm, 0, nEval);
        int[] train = Arrays.copyOfRange(perm, nEval, n);
        Arrays.sort(eval);
        Arrays.sort(train);
        return new Split(subset(ds, train), subset(ds, eval));
    }

    /** A view of the samples of {@code ds} at {@code indices}, in that order. */
    public static Dataset subset(Dataset ds, int[] indices) {
        int[] idx = indices.clone();
        for (int i : idx) {
            if (i < 0 || i >= ds.size()) {
                throw new IndexOutOfBoundsException("index " + i + " of a data set of " + ds.size());
            }
        }
        return new Dataset() {
            @Override
            public int size() {
                return idx.length;
            }

            @Override
            public Sample get(int i) {
                return ds.get(idx[i]);
            }
        };
    }

    /** A data set of the given samples, in memory. */
    public static Dataset of(List<Sample> samples) {
        List<Sample> copy = List.copyOf(samples);
        return new Dataset() {
            @Override
            public int size() {
                return copy.size();
            }

            @Override
            public Sample get(int i) {
                return copy.get(i);
            }
        };
    }

    /** A Fisher–Yates permutation of {@code 0..n-1} drawn from {@code rnd}. */
    static int[] permutation(int n, Random rnd) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }
}
