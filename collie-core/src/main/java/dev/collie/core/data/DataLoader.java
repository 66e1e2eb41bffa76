package dev.collie.core.data;

import dev.collie.core.CollieException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Random;

/**
 * Cuts a {@link Dataset} into optimizer steps of {@code gradAccum} micro-batches of {@code microBatchSize} rows,
 * epoch after epoch, for one rank of a data-parallel group.
 *
 * <p>Each epoch visits the samples in file order, or, with {@code shuffle}, in a permutation drawn from
 * {@code new Random(seed + epoch)}, the same on every rank. That order is cut into global batches of
 * {@code microBatchSize × gradAccum × numReplicas} consecutive rows; rank {@code r} takes rows
 * {@code [r·microBatchSize·gradAccum, (r+1)·microBatchSize·gradAccum)} of each global batch and reads them as
 * {@code gradAccum} micro-batches in order. So the ranks' rows are disjoint and together cover the epoch.
 *
 * <p>A last, incomplete global batch is dropped with {@code dropLast}. Otherwise (the default) it is kept as a
 * shorter last step: its rows are shared out equally among the ranks, each taking a contiguous share of
 * {@code ceil(remaining / numReplicas)} rows (the few rows missing to make the shares equal are taken again from
 * the start of the epoch's order, so every rank does the same number of steps and micro-batches), read as
 * micro-batches of {@code microBatchSize} rows with a short last one; that step may have fewer than
 * {@code gradAccum} micro-batches.
 *
 * <p>Training resumes exactly from a count of completed steps: {@link #position(long)} turns it into an
 * (epoch, step) position, and {@link #epoch(int, int)} or {@link #steps(long, long)} start there.
 * Batches are built lazily, one step at a time.
 */
public final class DataLoader {
    private final Dataset dataset;
    private final Collator collator;
    private final int microBatchSize;
    private final int gradAccum;
    private final int numReplicas;
    private final int rank;
    private final boolean shuffle;
    private final long seed;
    private final int stepsPerEpoch;

    private int cachedEpoch = -1;
    private int[] cachedOrder;

    /** An epoch and a step within it, both counted from 0. */
    public record Position(int epoch, int step) {
    }

    private DataLoader(Builder b) {
        this.dataset = b.dataset;
        this.collator = b.collator;
        this.microBatchSize = b.microBatchSize;
        this.gradAccum = b.gradAccum;
        this.numReplicas = b.numReplicas;
        this.rank = b.rank;
        this.shuffle = b.shuffle;
        this.seed = b.seed;
        int n = dataset.size();
        if (n == 0) {
            throw new CollieException("the data set is empty");
        }
        long global = globalBatchSize();
        long steps = n / global + (!b.dropLast && n % global != 0 ? 1 : 0);
        if (steps == 0) {
            throw new CollieException("the data set has " + n + " samples, fewer than one global batch of "
                    + global + " (micro_batch_size " + microBatchSize + " × gradient_accumulation_steps "
                    + gradAccum + " × " + numReplicas + " data-parallel ranks), and drop_last drops it");
        }
        this.stepsPerEpoch = (int) steps;
    }

    /** A builder over {@code dataset}, padding with {@code collator}. */
    public static Builder builder(Dataset dataset, Collator collator) {
        return new Builder(dataset, collator);
    }

    /**
     * Options of a {@link DataLoader}. Defaults: 1 row a micro-batch, no accumulation, one rank, shuffled with
     * seed 0, the last incomplete step kept.
     */
    public static final class Builder {
        private final Dataset dataset;
        private final Collator collator;
        private int microBatchSize = 1;
        private int gradAccum = 1;
        private int numReplicas = 1;
        private int rank;
        private boolean shuffle = true;
        private long seed;
        private boolean dropLast;

        private Builder(Dataset dataset, Collator collator) {
            if (dataset == null || collator == null) {
                throw new IllegalArgumentException("dataset and collator must not be null");
            }
            this.dataset = dataset;
            this.collator = collator;
        }

        /** Rows in one micro-batch (one forward and backward pass). */
        public Builder microBatchSize(int n) {
            this.microBatchSize = n;
            return this;
        }

        /** Micro-batches in one optimizer step. */
        public Builder gradAccum(int n) {
            this.gradAccum = n;
            return this;
        }

        /** The number of data-parallel ranks. */
        public Builder numReplicas(int n) {
            this.numReplicas = n;
            return this;
        }

        /** This rank, {@code 0 <= rank < numReplicas}. */
        public Builder rank(int r) {
            this.rank = r;
            return this;
        }

        /** Shuffle each epoch (true) or keep file order (false). */
        public Builder shuffle(boolean shuffle) {
            this.shuffle = shuffle;
            return this;
        }

        /** The seed of the shuffle; epoch {@code e} uses {@code new Random(seed + e)}. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** Drop the last, incomplete global batch of each epoch. */
        public Builder dropLast(boolean dropLast) {
            this.dropLast = dropLast;
            return this;
        }

        /** The loader; a {@link CollieException} if an option is out of range or the data too small. */
        public DataLoader build() {
            positive(microBatchSize, "micro_batch_size");
            positive(gradAccum, "gradient_accumulation_steps");
            positive(numReplicas, "the number of data-parallel ranks");
            if (rank < 0 || rank >= numReplicas) {
                throw new CollieException("rank must be in [0, " + numReplicas + "), got " + rank);
            }
            return new DataLoader(this);
        }

        private static void positive(int v, String name) {
            if (v < 1) {
                throw new CollieException(name + " must be >= 1, got " + v);
            }
        }
    }

    /** Optimizer steps in one epoch; every rank has the same number. */
    public int stepsPerEpoch() {
        return stepsPerEpoch;
    }

    /** Rows of one optimizer step over all ranks: {@code microBatchSize × gradAccum × numReplicas}. */
    public long globalBatchSize() {
        return (long) microBatchSize * gradAccum * numReplicas;
    }

    /** The position after {@code completedSteps} steps counted from the start of epoch 0. */
    public Position position(long completedSteps) {
        if (completedSteps < 0) {
            throw new IllegalArgumentException("completed steps must be >= 0, got " + completedSteps);
        }
        return new Position(Math.toIntExact(completedSteps / stepsPerEpoch), (int) (completedSteps % stepsPerEpoch));
    }

    /** The steps of {@code epoch}, each a list of this rank's micro-batches. */
    public Iterable<List<Batch>> epoch(int epoch) {
        return epoch(epoch, 0);
    }

    /** The steps of {@code epoch} from {@code startStep} on, to resume inside an epoch. */
    public Iterable<List<Batch>> epoch(int epoch, int startStep) {
        if (epoch < 0) {
            throw new IllegalArgumentException("epoch must be >= 0, got " + epoch);
        }
        if (startStep < 0 || startStep > stepsPerEpoch) {
            throw new IllegalArgumentException("start step must be in [0, " + stepsPerEpoch + "], got " + startStep);
        }
        long base = (long) epoch * stepsPerEpoch;
        return () -> steps(base + startStep, base + stepsPerEpoch);
    }

    /**
     * Global steps {@code [fromStep, toStep)} counted from the start of epoch 0, crossing epochs as needed: to
     * resume after {@code n} completed steps, start at {@code n}.
     */
    public Iterator<List<Batch>> steps(long fromStep, long toStep) {
        if (fromStep < 0 || toStep < fromStep) {
            throw new IllegalArgumentException("bad step range [" + fromStep + ", " + toStep + ")");
        }
        return new Iterator<>() {
            private long next = fromStep;

            @Override
            public boolean hasNext() {
                return next < toStep;
            }

            @Override
            public List<Batch> next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                Position p = position(next++);
                return step(p.epoch(), p.step());
            }
        };
    }

    /** This rank's micro-batches of one step. */
    public List<Batch> step(int epoch, int step) {
        int[] rows = rowIndices(epoch, step);
        List<Batch> out = new ArrayList<>((rows.length + microBatchSize - 1) / microBatchSize);
        for (int from = 0; from < rows.length; from += microBatchSize) {
            int to = Math.min(rows.length, from + microBatchSize);
            List<Sample> samples = new ArrayList<>(to - from);
            for (int i = from; i < to; i++) {
                samples.add(dataset.get(rows[i]));
            }
            out.add(collator.collate(samples));
        }
        return out;
    }

    /** The data set indices this rank reads in one step, micro-batch after micro-batch. */
    public int[] rowIndices(int epoch, int step) {
        if (step < 0 || step >= stepsPerEpoch) {
            throw new IndexOutOfBoundsException("step " + step + " of an epoch of " + stepsPerEpoch);
        }
        int[] order = order(epoch);
        int n = order.length;
        long global = globalBatchSize();
        long stepStart = step * global;
        long remaining = n - stepStart;
        long share = remaining >= global
                ? (long) microBatchSize * gradAccum
                : (remaining + numReplicas - 1) / numReplicas;
        long first = stepStart + rank * share;
        int[] rows = new int[(int) share];
        for (int k = 0; k < share; k++) {
            long p = first + k;
            rows[k] = order[(int) (p < n ? p : (p - n) % n)];
        }
        return rows;
    }

    /** The order of the samples in {@code epoch}: a seeded permutation, or file order. */
    private synchronized int[] order(int epoch) {
        if (epoch != cachedEpoch) {
            int n = dataset.size();
            if (shuffle) {
                cachedOrder = Datasets.permutation(n, new Random(seed + epoch));
            } else {
                cachedOrder = new int[n];
                Arrays.setAll(cachedOrder, i -> i);
            }
            cachedEpoch = epoch;
        }
        return cachedOrder;
    }

    /** Rows in one micro-batch. */
    public int microBatchSize() {
        return microBatchSize;
    }

    /** Micro-batches in one (full) optimizer step. */
    public int gradAccum() {
        return gradAccum;
    }

    /** The number of data-parallel ranks. */
    public int numReplicas() {
        return numReplicas;
    }

    /** This loader's rank. */
    public int rank() {
        return rank;
    }

    /** The data set read. */
    public Dataset dataset() {
        return dataset;
    }
}
