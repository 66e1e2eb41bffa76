package dev.collie.models.generation;

import java.util.Arrays;
import java.util.Random;

/**
 * Picks a row's next token from its logits as Hugging Face's logits processors and warpers do, in their order:
 * repetition penalty, then greedy argmax at temperature 0, else temperature, top-k, top-p and a draw. Its work arrays
 * are allocated once per generation, not per token, and shared by the rows of a batch; each row draws from its own
 * generator.
 */
final class Sampler {
    private final Generator.Options options;
    private final Random random;
    private final double[] probs;
    private final double[] scratch;
    private final long[] order;

    /** A sampler with work arrays of its own. */
    Sampler(int vocab, Generator.Options options) {
        this(vocab, options, new WorkArrays(vocab));
    }

    /**
     * A sampler over {@code work}, which the samplers of one batch share (a row is picked at a time): a batch of 32
     * rows over a 150k vocabulary then holds 3.6 MB of work arrays, not 115 MB.
     */
    Sampler(int vocab, Generator.Options options, WorkArrays work) {
        this.options = options;
        this.random = new Random(options.seed());
        boolean sampling = options.temperature() > 0;
        this.probs = sampling ? work.probs() : null;
        this.scratch = sampling && options.topK() > 0 && options.topK() < vocab ? work.select() : null;
        this.order = sampling && options.topP() < 1 ? work.order() : null;
    }

    /** Vocabulary-sized arrays, each made when a sampler first needs it. */
    static final class WorkArrays {
        private final int vocab;
        private double[] probs;
        private double[] select;
        private long[] order;

        WorkArrays(int vocab) {
            this.vocab = vocab;
        }

        double[] probs() {
            return probs != null ? probs : (probs = new double[vocab]);
        }

        double[] select() {
            return select != null ? select : (select = new double[vocab]);
        }

        long[] order() {
            return order != null ? order : (order = new long[vocab]);
        }
    }

    /** The next token of {@code row} from its {@code logits} (which this changes). */
    int pick(double[] logits, Generator.Row row) {
        if (row.seen != null) {
            penalize(logits, row.seen, options.repetitionPenalty());
        }
        if (options.temperature() == 0) {
            return argmax(logits);
        }
        return draw(weights(logits));
    }

    /**
     * The unnormalised probabilities of the tokens that temperature, top-k and top-p leave, in {@link #probs} (zero
     * for the others); returns their sum.
     */
    double weights(double[] logits) {
        int n = logits.length;
        double inv = 1 / options.temperature();
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            logits[i] *= inv;
            max = Math.max(max, logits[i]);
        }
        // top-k: only tokens at least as likely as the k-th (ties with it stay, as torch.topk's threshold keeps them)
        double floor = scratch == null ? Double.NEGATIVE_INFINITY : kthLargest(logits, options.topK());
        double sum = 0;
        for (int i = 0; i < n; i++) {
            probs[i] = logits[i] >= floor ? Math.exp(logits[i] - max) : 0;
            sum += probs[i];
        }
        if (order == null) {
            return sum;
        }
        // top-p: the most probable tokens first (ties by id, so the set does not depend on the sort), up to the
        // smallest set whose probability reaches p; float keys order them, the doubles add up
        int m = 0;
        for (int i = 0; i < n; i++) {
            if (probs[i] > 0) {
                order[m++] = ((long) Float.floatToIntBits((float) (probs[i] / sum)) << 32) | (0xFFFFFFFFL - i);
            }
        }
        Arrays.sort(order, 0, m);
        double mass = 0;
        double need = options.topP() * sum;
        int keep = 0;
        while (keep < m && (keep == 0 || mass < need)) {
            mass += probs[idAt(m - 1 - keep)];
            keep++;
        }
        for (int k = 0; k < m - keep; k++) {
            probs[idAt(k)] = 0;
        }
        return mass;
    }

    /** The normalised distribution {@link #pick} draws from when sampling (a copy; {@code logits} changes). */
    double[] distribution(double[] logits, Generator.Row row) {
        if (row.seen != null) {
            penalize(logits, row.seen, options.repetitionPenalty());
        }
        double sum = weights(logits);
        double[] p = probs.clone();
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    private int idAt(int k) {
        return (int) (0xFFFFFFFFL - (order[k] & 0xFFFFFFFFL));
    }

    /** A draw from the unnormalised {@code probs} (total {@code sum}) in id order. */
    private int draw(double sum) {
        double u = random.nextDouble() * sum;
        double acc = 0;
        int last = 0;
        for (int i = 0; i < probs.length; i++) {
            if (probs[i] > 0) {
                acc += probs[i];
                last = i;
                if (u < acc) {
                    return i;
                }
            }
        }
        return last;
    }

    /** CTRL's repetition penalty on every id set in {@code seen}: positive logits divided, negative multiplied. */
    static void penalize(double[] logits, long[] seen, double penalty) {
        for (int w = 0; w < seen.length; w++) {
            long bits = seen[w];
            while (bits != 0) {
                int id = (w << 6) + Long.numberOfTrailingZeros(bits);
                bits &= bits - 1;
                logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
            }
        }
    }

    /** The k-th largest of {@code v} (k ≥ 1), by selection on a copy. */
    private double kthLargest(double[] v, int k) {
        System.arraycopy(v, 0, scratch, 0, v.length);
        int lo = 0;
        int hi = v.length - 1;
        int target = k - 1;   // index in descending order
        while (lo < hi) {
            double pivot = scratch[(lo + hi) >>> 1];
            int i = lo;
            int j = hi;
            while (i <= j) {
                while (scratch[i] > pivot) {
                    i++;
                }
                while (scratch[j] < pivot) {
                    j--;
                }
                if (i <= j) {
                    double t = scratch[i];
                    scratch[i] = scratch[j];
                    scratch[j] = t;
                    i++;
                    j--;
                }
            }
            if (target <= j) {
                hi = j;
            } else if (target >= i) {
                lo = i;
            } else {
                return scratch[target];
            }
        }
        return scratch[target];
    }

    static int argmax(double[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
