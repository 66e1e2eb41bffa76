package dev.collie.models.generation;

import dev.collie.core.CollieException;
import dev.collie.core.nn.KvCache;
import dev.collie.core.nn.Tape;
import dev.collie.core.tensor.Workspaces;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/**
 * Autoregressive text generation for a {@link LanguageModel}: greedy decoding or sampling (temperature, top-k,
 * top-p), a repetition penalty, EOS ids and stop strings, with a {@link KvCache} so that each step feeds only the
 * newest token of every row.
 *
 * <p>The prompts are left-padded into one batch and prefilled in one forward; then each step takes every row's
 * last logits, picks its next token and feeds it back. A row stops at one of the EOS ids (kept in its output), at a
 * stop string (the tokens that complete it are kept; {@link #cutAtStop} cuts the text) or when its listener says so;
 * generation ends when every row has stopped or {@link Options#maxNewTokens()} tokens were produced. A step's arrays
 * live in a workspace that is reset, not freed, and the cache's buffers are written in place, so steady-state steps
 * touch no fresh memory.
 * <pre>{@code
 * int[] out = new Generator(model).generate(promptIds, Generator.Options.builder().maxNewTokens(60)
 *         .temperature(0.8).topP(0.95).seed(1).eosIds(2).build());
 * }</pre>
 */
public final class Generator {
    /** The per-thread workspace of a decoding step. */
    public static final String WORKSPACE = "collie-generate";

    private final LanguageModel model;
    private final Function<int[], String> decoder;

    /** A generator without stop strings (they need a {@link #Generator(LanguageModel, Function) decoder}). */
    public Generator(LanguageModel model) {
        this(model, null);
    }

    /** A generator that decodes ids with {@code decoder} to check {@link Options#stopStrings()}. */
    public Generator(LanguageModel model, Function<int[], String> decoder) {
        this.model = model;
        this.decoder = decoder;
    }

    /** Sees each token as it is picked; returns false to stop that row ({@link Finish#CANCELLED}). */
    @FunctionalInterface
    public interface TokenListener {
        boolean onToken(int row, int tokenId);
    }

    /** Why a row stopped. */
    public enum Finish {
        /** it produced one of the EOS ids */
        EOS,
        /** its text reached one of the stop strings */
        STOP_STRING,
        /** it produced {@link Options#maxNewTokens()} tokens */
        LENGTH,
        /** its {@link TokenListener} returned false */
        CANCELLED
    }

    /** One row's new tokens and why it stopped. */
    public record Completion(int[] tokens, Finish finish) {
        public Completion {
            tokens = tokens.clone();
        }

        @Override
        public int[] tokens() {
            return tokens.clone();
        }
    }

    /**
     * Every row's completion, and the time of the prefill (the prompts' forward and the first token) and of the
     * decoding steps after it.
     */
    public record Result(List<Completion> completions, long prefillNanos, long decodeNanos, long decodeTokens) {
        public Result {
            completions = List.copyOf(completions);
        }

        /** Tokens picked after the prefill, per second of decoding steps (0 when there were none). */
        public double decodeTokensPerSecond() {
            return decodeNanos == 0 ? 0 : decodeTokens * 1e9 / decodeNanos;
        }
    }

    /**
     * Decoding settings, in the order Hugging Face applies them: repetition penalty, temperature, top-k, top-p.
     *
     * @param maxNewTokens      the most tokens generated per row
     * @param temperature       0 for greedy decoding, else the softmax temperature of sampling
     * @param topK              sample only among the k most probable tokens (those tied with the k-th too); 0 = all
     * @param topP              nucleus sampling: keep the smallest set of tokens whose probability reaches this (1 = all)
     * @param repetitionPenalty CTRL's penalty on every token already in the row (prompt included): a positive logit
     *                          divided by it, a negative one multiplied; 1 = none
     * @param seed              seed of the sampling generator (same seed, same tokens)
     * @param eosIds            ids that end a row
     * @param stopStrings       texts that end a row once its new tokens' text contains one (needs a decoder)
     * @param padId             id fed to rows that have stopped and used to left-pad shorter prompts
     * @param useCache          whether to use a KV cache (false recomputes the whole sequence each step)
     */
    public record Options(int maxNewTokens, double temperature, int topK, double topP, double repetitionPenalty,
                          long seed, int[] eosIds, List<String> stopStrings, int padId, boolean useCache) {
        public Options {
            if (maxNewTokens < 0) {
                throw new CollieException("max new tokens must be >= 0, got " + maxNewTokens);
            }
            if (!(temperature >= 0) || Double.isInfinite(temperature)) {
                throw new CollieException("temperature must be >= 0 (0 = greedy), got " + temperature);
            }
            if (topK < 0) {
                throw new CollieException("top-k must be >= 0 (0 = no limit), got " + topK);
            }
            if (!(topP > 0 && topP <= 1)) {
                throw new CollieException("top-p must be in (0, 1], got " + topP);
            }
            if (!(repetitionPenalty > 0) || Double.isInfinite(repetitionPenalty)) {
                throw new CollieException("repetition penalty must be > 0 (1 = none), got " + repetitionPenalty);
            }
            eosIds = eosIds == null ? new int[0] : eosIds.clone();
            stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
            for (String s : stopStrings) {
                if (s.isEmpty()) {
                    throw new CollieException("a stop string must not be empty");
                }
            }
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

        /**
         * Builder of {@link Options}: 32 new tokens, greedy, top-k 0, top-p 1, repetition penalty 1, seed 0, no EOS,
         * no stop strings, pad 0, cached.
         */
        public static final class Builder {
            private int maxNewTokens = 32;
            private double temperature;
            private int topK;
            private double topP = 1.0;
            private double repetitionPenalty = 1.0;
            private long seed;
            private int[] eosIds = new int[0];
            private List<String> stopStrings = List.of();
            private int padId;
            private boolean useCache = true;

            public Builder maxNewTokens(int v) { maxNewTokens = v; return this; }
            public Builder temperature(double v) { temperature = v; return this; }
            public Builder topK(int v) { topK = v; return this; }
            public Builder topP(double v) { topP = v; return this; }
            public Builder repetitionPenalty(double v) { repetitionPenalty = v; return this; }
            public Builder seed(long v) { seed = v; return this; }
            public Builder eosIds(int... v) { eosIds = v.clone(); return this; }
            public Builder stopStrings(List<String> v) { stopStrings = v; return this; }
            public Builder padId(int v) { padId = v; return this; }
            public Builder useCache(boolean v) { useCache = v; return this; }

            public Options build() {
                return new Options(maxNewTokens, temperature, topK, topP, repetitionPenalty, seed, eosIds, stopStrings,
                        padId, useCache);
            }
        }
    }

    /** Generates a continuation of {@code prompt}; returns only the new tokens (EOS included if reached). */
    public int[] generate(int[] prompt, Options options) {
        return generate(List.of(prompt), options).get(0);
    }

    /** Generates a continuation of each prompt (left-padded into one batch); returns each row's new tokens. */
    public List<int[]> generate(List<int[]> prompts, Options options) {
        List<int[]> out = new ArrayList<>();
        for (Completion c : generate(prompts, options, (row, id) -> true).completions()) {
            out.add(c.tokens);
        }
        return out;
    }

    /**
     * Generates a continuation of each prompt, telling {@code listener} each token as it is picked (streaming);
     * returns the completions with their finish reasons and the timings.
     */
    public Result generate(List<int[]> prompts, Options options, TokenListener listener) {
        List<Request> requests = new ArrayList<>();
        for (int[] p : prompts) {
            requests.add(new Request(p, options));
        }
        return run(requests, listener);
    }

    /** One row of a batch: a prompt and its own settings. */
    public record Request(int[] prompt, Options options) {
        public Request {
            prompt = prompt.clone();
        }

        @Override
        public int[] prompt() {
            return prompt.clone();
        }
    }

    /**
     * Generates a continuation of each request's prompt with its own settings in one batch (several requests share
     * each forward; a row draws from its own generator, seeded by its {@link Options#seed()}, so its tokens do not
     * depend on the other rows); all must agree on {@link Options#padId()} and {@link Options#useCache()}.
     */
    public Result run(List<Request> requests, TokenListener listener) {
        if (requests.isEmpty()) {
            throw new CollieException("no prompt to generate from");
        }
        Options first = requests.get(0).options();
        long vocab = model.vocabSize();
        int maxLen = 0;
        int maxNew = 0;
        boolean ragged = false;
        for (Request q : requests) {
            int[] p = q.prompt;
            Options o = q.options();
            if (o.padId() != first.padId() || o.useCache() != first.useCache()) {
                throw new CollieException("the requests of one batch must share their pad id and cache setting");
            }
            if (!o.stopStrings().isEmpty() && decoder == null) {
                throw new CollieException("stop strings need a generator made with a decoder (ids to text)");
            }
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
            maxNew = Math.max(maxNew, o.maxNewTokens());
        }
        int b = requests.size();
        int pad = first.padId();
        int capacity = maxLen + maxNew;
        // every row's tokens so far (left-padded) and, for ragged prompts, which are real
        long[][] seq = new long[b][capacity];
        long[][] mask = ragged ? new long[b][capacity] : null;
        Row[] rows = new Row[b];
        Sampler.WorkArrays work = new Sampler.WorkArrays((int) vocab);
        for (int r = 0; r < b; r++) {
            int[] p = requests.get(r).prompt;
            int off = maxLen - p.length;
            Arrays.fill(seq[r], 0, off, pad);
            for (int j = 0; j < p.length; j++) {
                seq[r][off + j] = p[j];
                if (mask != null) {
                    mask[r][off + j] = 1;
                }
            }
            rows[r] = new Row(p, requests.get(r).options(), (int) vocab, work);
            if (rows[r].options.maxNewTokens() == 0) {
                rows[r].finish = Finish.LENGTH;
            }
        }
        double[] logits = new double[(int) vocab];
        KvCache cache = first.useCache() ? new KvCache(capacity) : null;
        long prefill = 0;
        long decodeTokens = 0;
        long start = System.nanoTime();
        int total = maxLen;
        try (MemoryWorkspace outside = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            int fed = 0; // positions already in the cache
            boolean allDone = Arrays.stream(rows).allMatch(row -> row.finish != null);
            for (int step = 0; step < maxNew && !allDone; step++) {
                allDone = true;
                try (MemoryWorkspace ws = Workspaces.open(WORKSPACE)) {
                    int from = cache == null ? 0 : fed;
                    int t = total - from;
                    Tape tape = Tape.forInference(b, t);
                    if (cache != null) {
                        tape.setKvCache(cache);
                    }
                    if (mask != null) {
                        tape.setAttentionMask(Nd4j.createFromArray(prefixes(mask, total)));
                    }
                    INDArray last = model.lastPositionLogits(tape, Nd4j.createFromArray(slices(seq, from, total)));
                    if (cache != null) {
                        cache.advance(t);
                        fed = total;
                    }
                    INDArray dense = last.isView() || last.ordering() != 'c' ? last.dup('c') : last;
                    for (int r = 0; r < b; r++) {
                        Row row = rows[r];
                        if (row.finish != null) {
                            seq[r][total] = pad;
                            continue;
                        }
                        copyRow(dense, r, logits);
                        int id = row.sampler.pick(logits, row);
                        seq[r][total] = id;
                        row.add(id);
                        decodeTokens += step > 0 ? 1 : 0;
                        row.finish = finish(row, id, listener.onToken(r, id));
                        allDone &= row.finish != null;
                    }
                }
                if (step == 0) {
                    prefill = System.nanoTime() - start;
                }
                if (mask != null) {
                    for (long[] m : mask) {
                        m[total] = 1;
                    }
                }
                total++;
            }
        }
        long decode = System.nanoTime() - start - prefill;
        List<Completion> out = new ArrayList<>();
        for (Row row : rows) {
            out.add(new Completion(Arrays.copyOf(row.tokens, row.count), row.finish == null ? Finish.LENGTH
                    : row.finish));
        }
        return new Result(out, prefill, decode, decodeTokens);
    }

    /** Why the row that just picked {@code id} stops now, or null to go on. */
    private Finish finish(Row row, int id, boolean wanted) {
        Options options = row.options;
        for (int e : options.eosIds) {
            if (e == id) {
                return Finish.EOS;
            }
        }
        if (!options.stopStrings().isEmpty() && row.reachedStop(decoder, options.stopStrings())) {
            return Finish.STOP_STRING;
        }
        if (!wanted) {
            return Finish.CANCELLED;
        }
        return row.count == options.maxNewTokens() ? Finish.LENGTH : null;
    }

    /** {@code text} up to the first of {@code stops} in it (all of it when none occurs): OpenAI's completion text. */
    public static String cutAtStop(String text, List<String> stops) {
        int cut = text.length();
        for (String s : stops) {
            int at = text.indexOf(s);
            if (at >= 0) {
                cut = Math.min(cut, at);
            }
        }
        return text.substring(0, cut);
    }

    /** Row {@code r} of logits {@code [batch, vocab]} (dense, C order) into {@code into}. */
    private static void copyRow(INDArray logits, int r, double[] into) {
        int v = into.length;
        long offset = logits.offset() + (long) r * v;
        if (logits.dataType() == DataType.DOUBLE) {
            DoubleBuffer buf = logits.data().asNioDouble();
            buf.position((int) offset);
            buf.get(into);
        } else {
            INDArray f = logits.dataType() == DataType.FLOAT ? logits : logits.castTo(DataType.FLOAT);
            FloatBuffer buf = f.data().asNioFloat();
            buf.position((int) (f == logits ? offset : (long) r * v));
            for (int i = 0; i < v; i++) {
                into[i] = buf.get();
            }
        }
    }

    private static long[][] slices(long[][] seq, int from, int to) {
        long[][] out = new long[seq.length][];
        for (int r = 0; r < seq.length; r++) {
            out[r] = Arrays.copyOfRange(seq[r], from, to);
        }
        return out;
    }

    private static long[][] prefixes(long[][] mask, int to) {
        return slices(mask, 0, to);
    }

    /** One row's state: its settings and sampler, new tokens, the tokens it has seen (repetition penalty), finish. */
    static final class Row {
        final Options options;
        final Sampler sampler;
        final int[] tokens;
        int count;
        final long[] seen;
        Finish finish;

        Row(int[] prompt, Options options, int vocab) {
            this(prompt, options, vocab, new Sampler.WorkArrays(vocab));
        }

        Row(int[] prompt, Options options, int vocab, Sampler.WorkArrays work) {
            this.options = options;
            this.sampler = new Sampler(vocab, options, work);
            tokens = new int[options.maxNewTokens()];
            seen = options.repetitionPenalty() == 1 ? null : new long[(vocab + 63) / 64];
            if (seen != null) {
                for (int id : prompt) {
                    seen[id >>> 6] |= 1L << id;
                }
            }
        }

        void add(int id) {
            tokens[count++] = id;
            if (seen != null) {
                seen[id >>> 6] |= 1L << id;
            }
        }

        /** Whether the text of the last new tokens contains a stop string (decoding only a tail that can hold one). */
        boolean reachedStop(Function<int[], String> decoder, List<String> stops) {
            int longest = 0;
            for (String s : stops) {
                longest = Math.max(longest, s.length());
            }
            // a token is at least one character, or a byte of one (up to 4 per character)
            int from = Math.max(0, count - 4 * longest - 4);
            String tail = decoder.apply(Arrays.copyOfRange(tokens, from, count));
            for (String s : stops) {
                if (tail.contains(s)) {
                    return true;
                }
            }
            return false;
        }
    }
}
