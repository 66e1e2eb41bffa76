package dev.collie.models.generation;

import dev.collie.core.CollieException;
import dev.collie.core.nn.KvCache;
import dev.collie.core.nn.Tape;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Autoregressive text generation for a {@link LanguageModel}: greedy decoding or sampling with temperature and
 * nucleus (top-p) filtering, with a {@link KvCache} so that each step feeds only the newest token.
 *
 * <p>The prompt is prefilled in one forward; then each step takes the last position's logits, picks the next
 * token and feeds it back. A batch of prompts of different lengths is left-padded and carries an attention mask
 * over past and new positions. A row stops at one of the EOS ids (which is kept in its output); generation ends
 * when every row has stopped or {@link Options#maxNewTokens()} tokens were produced.
 * <pre>{@code
 * int[] out = new Generator(model).generate(promptIds, Generator.Options.builder().maxNewTokens(60)
 *         .temperature(0.8).topP(0.95).seed(1).eosIds(2).build());
 * }</pre>
 */
public final class Generator {
    private final LanguageModel model;

    public Generator(LanguageModel model) {
        this.model = model;
    }

    /**
     * Decoding settings.
     *
     * @param maxNewTokens the most tokens generated per row
     * @param temperature  0 for greedy decoding, else the softmax temperature of sampling
     * @param topP         nucleus sampling: keep the smallest set of tokens whose probability reaches this (1 = all)
     * @param seed         seed of the sampling generator (same seed, same tokens)
     * @param eosIds       ids that end a row
     * @param padId        id fed to rows that have stopped and used to left-pad shorter prompts
     * @param useCache     whether to use a KV cache (false recomputes the whole sequence each step)
     */
    public record Options(int maxNewTokens, double temperature, double topP, long seed, int[] eosIds, int padId,
                          boolean useCache) {
        public Options {
            if (maxNewTokens < 0) {
                throw new CollieException("max new tokens must be >= 0, got " + maxNewTokens);
            }
            if (!(temperature >= 0) || Double.isInfinite(temperature)) {
                throw new CollieException("temperature must be >= 0 (0 = greedy), got " + temperature);
            }
            if (!(topP > 0 && topP <= 1)) {
                throw new CollieException("top-p must be in (0, 1], got " + topP);
            }
            eosIds = eosIds == null ? new int[0] : eosIds.clone();
        }

        /** Greedy decoding of {@code maxNewTokens} tokens with a cache and no EOS. */
        public static Options greedy(int maxNewTokens) {
            return builder().maxNewTokens(maxNewTokens).build();
        }

        public static Builder builder() {
            return new Builder();
        }

        @Override
        public int[] eosIds() {
            return eosIds.clone();
        }

        /** Builder of {@link Options}: 32 new tokens, greedy, top-p 1, seed 0, no EOS, pad 0, cached. */
        public static final class Builder {
            private int maxNewTokens = 32;
            private double temperature;
            private double topP = 1.0;
            private long seed;
            private int[] eosIds = new int[0];
            private int padId;
            private boolean useCache = true;

            public Builder maxNewTokens(int v) { maxNewTokens = v; return this; }
            public Builder temperature(double v) { temperature = v; return this; }
            public Builder topP(double v) { topP = v; return this; }
            public Builder seed(long v) { seed = v; return this; }
            public Builder eosIds(int... v) { eosIds = v.clone(); return this; }
            public Builder padId(int v) { padId = v; return this; }
            public Builder useCache(boolean v) { useCache = v; return this; }

            public Options build() {
                return new Options(maxNewTokens, temperature, topP, seed, eosIds, padId, useCache);
            }
        }
    }

    /** Generates a continuation of {@code prompt}; returns only the new tokens (EOS included if reached). */
    public int[] generate(int[] prompt, Options options) {
        return generate(List.of(prompt), options).get(0);
    }

    /** Generates a continuation of each prompt (left-padded into one batch); returns each row's new tokens. */
    public List<int[]> generate(List<int[]> prompts, Options options) {
        if (prompts.isEmpty()) {
            throw new CollieException("no prompt to generate from");
        }
        long vocab = model.vocabSize();
        int maxLen = 0;
        boolean ragged = false;
        for (int[] p : prompts) {
            if (p.length == 0) {
                throw new CollieException("a prompt must have at least one token");
            }
            for (int id : p) {
                if (id < 0 || id >= vocab) {
                    throw new CollieException("prompt token id " + id + " is outside the vocabulary [0, " + vocab
                            + ")");
                }
            }
            ragged |= maxLen != 0 && p.length != maxLen;
            maxLen = Math.max(maxLen, p.length);
        }
        int b = prompts.size();
        // every row's tokens so far (left-padded) and its mask; a mask is needed only for ragged prompts
        long[][] seq = new long[b][maxLen];
        long[][] mask = ragged ? new long[b][maxLen] : null;
        for (int r = 0; r < b; r++) {
            int[] p = prompts.get(r);
            int off = maxLen - p.length;
            Arrays.fill(seq[r], 0, off, options.padId());
            for (int j = 0; j < p.length; j++) {
                seq[r][off + j] = p[j];
                if (mask != null) {
                    mask[r][off + j] = 1;
                }
            }
        }
        Random rnd = new Random(options.seed());
        List<List<Integer>> out = new ArrayList<>();
        for (int r = 0; r < b; r++) {
            out.add(new ArrayList<>());
        }
        boolean[] done = new boolean[b];
        KvCache cache = options.useCache() ? new KvCache() : null;
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            int fed = 0; // positions already in the cache
            for (int step = 0; step < options.maxNewTokens(); step++) {
                int total = seq[0].length;
                int from = cache == null ? 0 : fed;
                int t = total - from;
                long[][] input = new long[b][];
                for (int r = 0; r < b; r++) {
                    input[r] = Arrays.copyOfRange(seq[r], from, total);
                }
                Tape tape = Tape.forInference(b, t);
                if (cache != null) {
                    tape.setKvCache(cache);
                }
                if (mask != null) {
                    tape.setAttentionMask(Nd4j.createFromArray(mask));
                }
                INDArray logits = model.forward(tape, Nd4j.createFromArray(input));
                if (cache != null) {
                    cache.advance(t);
                    fed = total;
                }
                long[] next = new long[b];
                boolean allDone = true;
                for (int r = 0; r < b; r++) {
                    if (done[r]) {
                        next[r] = options.padId();
                        continue;
                    }
                    // rows per sequence: t, plus any positions the model adds (prompt tuning's virtual tokens)
                    long per = logits.size(0) / b;
                    double[] row = logits.getRow(r * per + per - 1).toDoubleVector();
                    int id = pick(row, options, rnd);
                    next[r] = id;
                    out.get(r).add(id);
                    for (int e : options.eosIds()) {
                        done[r] |= e == id;
                    }
                    allDone &= done[r];
                }
                if (logits.closeable()) {
                    logits.close();
                }
                if (allDone) {
                    break;
                }
                for (int r = 0; r < b; r++) {
                    seq[r] = Arrays.copyOf(seq[r], total + 1);
                    seq[r][total] = next[r];
                    if (mask != null) {
                        mask[r] = Arrays.copyOf(mask[r], total + 1);
                        mask[r][total] = 1;
                    }
                }
            }
        }
        List<int[]> result = new ArrayList<>();
        for (List<Integer> o : out) {
            result.add(o.stream().mapToInt(Integer::intValue).toArray());
        }
        return result;
    }

    /** The next token from one row of logits: argmax at temperature 0, else a nucleus sample. */
    static int pick(double[] logits, Options o, Random rnd) {
        if (o.temperature() == 0) {
            return argmax(logits);
        }
        int n = logits.length;
        double max = Double.NEGATIVE_INFINITY;
        for (double v : logits) {
            max = Math.max(max, v);
        }
        double[] p = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            p[i] = Math.exp((logits[i] - max) / o.temperature());
            sum += p[i];
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
            p[i] /= sum;
        }
        // most probable first; ties by id, so the order (and the sample) does not depend on the sort
        Arrays.sort(order, (a, c) -> p[a] != p[c] ? Double.compare(p[c], p[a]) : Integer.compare(a, c));
        int keep = 0;
        double mass = 0;
        while (keep < n && (keep == 0 || mass < o.topP())) {
            mass += p[order[keep]];
            keep++;
        }
        double u = rnd.nextDouble() * mass;
        double acc = 0;
        for (int k = 0; k < keep; k++) {
            acc += p[order[k]];
            if (u < acc) {
                return order[k];
            }
        }
        return order[keep - 1];
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
