package dev.collie.models.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.data.Tokenizer;
import dev.collie.core.dist.Communicator;
import dev.collie.core.eval.Collectives;
import dev.collie.core.eval.EvalBatch;
import dev.collie.core.eval.Metric;
import dev.collie.core.eval.MetricRegistry;
import dev.collie.core.eval.PerplexityMetric;
import dev.collie.core.io.AtomicFiles;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Tape;
import dev.collie.core.train.Evaluation;
import dev.collie.core.train.LanguageModel;
import dev.collie.models.generation.Generator;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Runs a language model over evaluation examples for one {@link EvalTask} and reports the named metrics, CoLLiE's
 * {@code EvaluatorForPerplexity}, {@code EvaluatorForGeneration} and {@code EvaluatorForClassfication}:
 * <pre>{@code
 * Map<String, Double> r = Evaluator.builder().model(model).tokenizer(tok).data(Path.of("dev.jsonl"))
 *         .task(EvalTask.GENERATION).metrics("bleu", "rouge").maxNewTokens(32).build().evaluate();
 * }</pre>
 * Under data parallelism ({@link Builder#communicator}) rank r evaluates examples r, r + size, r + 2·size, ... and
 * the metrics are gathered, so every rank reports what one rank reports over all the examples. Decoding is greedy;
 * texts are encoded with the tokenizer's special tokens (a BOS) and decoded without them.
 */
public final class Evaluator implements Evaluation {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final LanguageModel model;
    private final Tokenizer tokenizer;
    private final List<EvalExample> examples;
    private final EvalTask task;
    private final Map<String, Metric> metrics;
    private final List<String> keys;
    private final int maxNewTokens;
    private final int batchSize;
    private final Communicator group;
    private final int[] eosIds;
    private final Path predictionsFile;
    private List<Prediction> predictions = List.of();

    /**
     * One example's result, as {@code --predictions} writes it.
     *
     * @param input   the example's input
     * @param pred    the generated text; for classification the predicted option's text (helm: the generated text
     *                when no option matches)
     * @param targets the references (generation) or the right option's text (classification)
     */
    public record Prediction(String input, String pred, List<String> targets) {
        public Prediction {
            targets = List.copyOf(targets);
        }

        /** {@code {"input", "pred", "target"}} on one line; the target a text, or a list for several references. */
        public String toJson() {
            ObjectNode o = JSON.createObjectNode().put("input", input).put("pred", pred);
            if (targets.size() == 1) {
                o.put("target", targets.get(0));
            } else {
                targets.forEach(o.putArray("target")::add);
            }
            try {
                return JSON.writeValueAsString(o);
            } catch (JsonProcessingException e) {
                throw new UncheckedIOException(e);
            }
        }

        static Prediction fromJson(String line) {
            try {
                JsonNode n = JSON.readTree(line);
                JsonNode t = n.get("target");
                List<String> targets = new ArrayList<>();
                if (t.isArray()) {
                    t.forEach(x -> targets.add(x.asText()));
                } else {
                    targets.add(t.asText());
                }
                return new Prediction(n.get("input").asText(), n.get("pred").asText(), targets);
            } catch (JsonProcessingException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    private Evaluator(Builder b, List<EvalExample> examples, Map<String, Metric> metrics, List<String> keys) {
        this.model = b.model;
        this.tokenizer = b.tokenizer;
        this.examples = examples;
        this.task = b.task;
        this.metrics = metrics;
        this.keys = keys;
        this.maxNewTokens = b.maxNewTokens != null ? b.maxNewTokens
                : task == EvalTask.CLASSIFICATION_HELM ? 3 : 32;
        this.batchSize = b.batchSize;
        this.group = b.group;
        this.eosIds = b.eosIds != null ? b.eosIds.clone()
                : tokenizer.eosId().isPresent() ? new int[] {tokenizer.eosId().getAsInt()} : new int[0];
        this.predictionsFile = b.predictionsFile;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The keys {@link #evaluate()} reports, in its order (e.g. {@code bleu, rouge-1-p, ..., rouge-l-f}). */
    @Override
    public List<String> producedKeys() {
        return keys;
    }

    /** The task this evaluator runs. */
    public EvalTask task() {
        return task;
    }

    /**
     * Evaluates every example (this rank's share of them under data parallelism, then gathers: a collective that
     * every rank calls) and returns the metrics' values by key, in the order of {@link #producedKeys()}.
     */
    @Override
    public Map<String, Double> evaluate() {
        metrics.values().forEach(Metric::reset);
        int rank = group == null ? 0 : group.rank();
        int size = group == null ? 1 : group.size();
        List<EvalExample> mine = IntStream.range(0, examples.size()).filter(i -> i % size == rank)
                .mapToObj(examples::get).toList();
        List<Prediction> local = new ArrayList<>();
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            for (int from = 0; from < mine.size(); from += batchSize) {
                List<EvalExample> batch = mine.subList(from, Math.min(mine.size(), from + batchSize));
                EvalBatch result = switch (task) {
                    case PPL -> perplexity(batch);
                    case GENERATION -> generation(batch, local);
                    case CLASSIFICATION_HARNESS, CLASSIFICATION_HELM -> classification(batch, local);
                };
                metrics.values().forEach(m -> m.update(result));
            }
        }
        if (size > 1) {
            metrics.values().forEach(m -> m.gather(group));
        }
        Map<String, Double> out = new LinkedHashMap<>();
        metrics.values().forEach(m -> out.putAll(m.get()));
        if (task != EvalTask.PPL) {
            predictions = gather(local, rank, size);
            if (predictionsFile != null && rank == 0) {
                StringBuilder text = new StringBuilder();
                predictions.forEach(p -> text.append(p.toJson()).append('\n'));
                AtomicFiles.writeString(predictionsFile, text.toString());
            }
        }
        return out;
    }

    /** The predictions of the last {@link #evaluate()}, every rank's, in the order of the examples (none for PPL). */
    public List<Prediction> predictions() {
        return predictions;
    }

    /**
     * The helm style's normalisation of an option and of the generated text: lower case, then only the ASCII
     * letters and digits kept (CoLLiE's {@code only_latin=True}): {@code " The answer: B."} becomes
     * {@code "theanswerb"}.
     */
    public static String normalise(String text) {
        String lower = text.toLowerCase(Locale.ROOT);
        StringBuilder out = new StringBuilder(lower.length());
        for (int i = 0; i < lower.length(); i++) {
            char c = lower.charAt(i);
            if (c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
                out.append(c);
            }
        }
        return out.toString();
    }

    /**
     * The index of the option whose normalised text the normalised {@code generated} text starts with; the longest
     * such option when several do (the first of equals), -1 when none does or an option normalises to nothing.
     */
    public static int matchOption(String generated, List<String> options) {
        String out = normalise(generated);
        int best = -1;
        int bestLength = 0;
        for (int i = 0; i < options.size(); i++) {
            String o = normalise(options.get(i));
            if (o.length() > bestLength && out.startsWith(o)) {
                best = i;
                bestLength = o.length();
            }
        }
        return best;
    }

    private EvalBatch perplexity(List<EvalExample> batch) {
        List<int[]> rows = new ArrayList<>();
        int[] prompts = new int[batch.size()];
        for (int i = 0; i < batch.size(); i++) {
            EvalExample e = batch.get(i);
            boolean plain = e.input().isEmpty();
            rows.add(encode(e.input() + e.outputs().get(0), e));
            prompts[i] = plain ? 0 : encode(e.input(), e).length;
        }
        double[][] scored = meanLosses(rows, prompts);
        double sum = 0;
        long tokens = 0;
        for (double[] s : scored) {
            if (s[1] > 0) {
                sum += s[0] * s[1];
                tokens += (long) s[1];
            }
        }
        return EvalBatch.ofLoss(sum, tokens);
    }

    private EvalBatch generation(List<EvalExample> batch, List<Prediction> local) {
        List<String> preds = generate(batch);
        List<List<String>> refs = batch.stream().map(EvalExample::outputs).toList();
        for (int i = 0; i < batch.size(); i++) {
            local.add(new Prediction(batch.get(i).input(), preds.get(i), refs.get(i)));
        }
        return EvalBatch.ofTexts(preds, refs);
    }

    private EvalBatch classification(List<EvalExample> batch, List<Prediction> local) {
        long[] predicted = new long[batch.size()];
        long[] target = new long[batch.size()];
        List<String> texts = new ArrayList<>();
        List<List<String>> refs = new ArrayList<>();
        List<String> generated = task == EvalTask.CLASSIFICATION_HELM ? generate(batch) : null;
        double[][] losses = task == EvalTask.CLASSIFICATION_HARNESS ? optionLosses(batch) : null;
        for (int i = 0; i < batch.size(); i++) {
            EvalExample e = batch.get(i);
            int p = generated != null ? matchOption(generated.get(i), e.options()) : argmin(losses[i]);
            // helm without a matching option: class id options.size(), never a target (wrong, and its own class for f1)
            predicted[i] = p >= 0 ? p : e.options().size();
            target[i] = e.target();
            texts.add(p >= 0 ? e.options().get(p) : generated.get(i));
            refs.add(List.of(e.options().get(e.target())));
            local.add(new Prediction(e.input(), texts.get(i), refs.get(i)));
        }
        return new EvalBatch(new EvalBatch.Texts(texts, refs), new EvalBatch.Labels(Nd4j.createFromArray(predicted),
                Nd4j.createFromArray(target), null), null);
    }

    /** The first smallest value's index. */
    static int argmin(double[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] < v[best]) {
                best = i;
            }
        }
        return best;
    }

    /**
     * Harness style: per example, per option, the mean loss of the option's tokens after the input (CoLLiE's
     * {@code GPTLMLoss}, a mean over the labelled tokens). The option's tokens are those {@code input + option}
     * has beyond {@code input}'s.
     */
    private double[][] optionLosses(List<EvalExample> batch) {
        List<int[]> rows = new ArrayList<>();
        List<Integer> prompts = new ArrayList<>();
        for (EvalExample e : batch) {
            int prompt = encode(e.input(), e).length;
            for (int o = 0; o < e.options().size(); o++) {
                int[] ids = encode(e.input() + e.options().get(o), e);
                if (ids.length <= prompt) {
                    throw new CollieException(e.source() + ": option " + o + " (\"" + e.options().get(o)
                            + "\") adds no token after the input, so it has no loss to compare");
                }
                rows.add(ids);
                prompts.add(prompt);
            }
        }
        double[][] scored = meanLosses(rows, prompts.stream().mapToInt(Integer::intValue).toArray());
        double[][] out = new double[batch.size()][];
        int at = 0;
        for (int i = 0; i < batch.size(); i++) {
            out[i] = new double[batch.get(i).options().size()];
            for (int o = 0; o < out[i].length; o++) {
                out[i][o] = scored[at++][0];
            }
        }
        return out;
    }

    /**
     * The mean next-token loss of each row over its tokens from {@code prompts[r]} on ({@code 0}: every token), and
     * how many tokens that is: {@code [row][mean, count]}. The rows go through the model in batches of
     * {@link Builder#batchSize}, right-padded (padding follows every real token, so a causal model needs no mask).
     */
    private double[][] meanLosses(List<int[]> rows, int[] prompts) {
        double[][] out = new double[rows.size()][];
        for (int from = 0; from < rows.size(); from += batchSize) {
            int to = Math.min(rows.size(), from + batchSize);
            int b = to - from;
            int t = rows.subList(from, to).stream().mapToInt(r -> r.length).max().orElse(0);
            long[][] ids = new long[b][t];
            long[][] labels = new long[b][t];
            for (int r = 0; r < b; r++) {
                int[] row = rows.get(from + r);
                Arrays.fill(ids[r], tokenizer.padId());
                Arrays.fill(labels[r], CausalLmLoss.IGNORE_INDEX);
                for (int j = 0; j < row.length; j++) {
                    ids[r][j] = row[j];
                    labels[r][j] = j >= prompts[from + r] ? row[j] : CausalLmLoss.IGNORE_INDEX;
                }
            }
            INDArray logits = model.forward(Tape.forInference(b, t), Nd4j.createFromArray(ids));
            INDArray targets = CausalLmLoss.shiftedTargets(model.labelsFor(Nd4j.createFromArray(labels)));
            long per = targets.length() / b;
            for (int r = 0; r < b; r++) {
                INDArray rowTargets = targets.get(NDArrayIndex.interval(r * per, (r + 1) * per)).dup();
                long n = rowTargets.neq(CausalLmLoss.IGNORE_INDEX).castTo(DataType.INT64)
                        .sumNumber().longValue();
                double mean = n == 0 ? Double.NaN : model.loss().crossEntropy(logits.get(NDArrayIndex.interval(
                        r * per, (r + 1) * per), NDArrayIndex.all()).dup(), rowTargets, false)[0].getDouble(0);
                out[from + r] = new double[] {mean, n};
            }
        }
        return out;
    }

    /** Greedy continuations of the inputs (left-padded into one batch), decoded without special tokens. */
    private List<String> generate(List<EvalExample> batch) {
        List<int[]> prompts = batch.stream().map(e -> encode(e.input(), e)).toList();
        Generator.Options options = Generator.Options.builder().maxNewTokens(maxNewTokens).eosIds(eosIds)
                .padId(tokenizer.padId()).build();
        return new Generator(model).generate(prompts, options).stream().map(ids -> tokenizer.decode(ids, true))
                .toList();
    }

    /** {@code text}'s ids with special tokens, each checked against the model's vocabulary. */
    private int[] encode(String text, EvalExample e) {
        int[] ids = tokenizer.encode(text, true);
        if (ids.length == 0) {
            throw new CollieException(e.source() + ": the input encodes to no token (the tokenizer adds no BOS):"
                    + " give a non-empty input");
        }
        for (int id : ids) {
            if (id < 0 || id >= model.vocabSize()) {
                throw new CollieException(e.source() + ": the tokenizer produced token id " + id + ", outside the"
                        + " model's vocabulary [0, " + model.vocabSize() + ")");
            }
        }
        return ids;
    }

    /** Every rank's predictions, back in the order of the examples (rank r held examples r, r + size, ...). */
    private List<Prediction> gather(List<Prediction> local, int rank, int size) {
        if (size == 1) {
            return List.copyOf(local);
        }
        List<String> all = Collectives.gather(group, local.stream().map(Prediction::toJson).toList());
        Prediction[] ordered = new Prediction[all.size()];
        int at = 0;
        for (int r = 0; r < size; r++) {
            for (int i = r; i < examples.size(); i += size) {
                ordered[i] = Prediction.fromJson(all.get(at++));
            }
        }
        return List.of(ordered);
    }

    /**
     * Builder of an {@link Evaluator}: a model, a tokenizer, the examples (a file or a list) and the task are
     * needed; the metrics default to the task's ({@link EvalTask#defaultMetrics()}), the batch size to 8, the new
     * tokens to 32 (helm: 3, CoLLiE's), the EOS ids to the tokenizer's.
     */
    public static final class Builder {
        private LanguageModel model;
        private Tokenizer tokenizer;
        private Path dataFile;
        private List<EvalExample> examples;
        private EvalTask task;
        private List<String> metricNames;
        private MetricRegistry registry;
        private Integer maxNewTokens;
        private int batchSize = 8;
        private Communicator group;
        private int[] eosIds;
        private Path predictionsFile;

        private Builder() {
        }

        public Builder model(LanguageModel v) { model = v; return this; }
        public Builder tokenizer(Tokenizer v) { tokenizer = v; return this; }
        /** A JSONL file in the task's form ({@link EvalData}), read by {@link #build()}. */
        public Builder data(Path v) { dataFile = v; examples = null; return this; }
        public Builder data(List<EvalExample> v) { examples = List.copyOf(v); dataFile = null; return this; }
        public Builder task(EvalTask v) { task = v; return this; }
        /** Metric names of the registry ({@code ppl}, {@code bleu}, {@code rouge}, {@code accuracy}, {@code f1}). */
        public Builder metrics(String... v) { metricNames = List.of(v); return this; }
        public Builder metrics(List<String> v) { metricNames = List.copyOf(v); return this; }
        /** Where metric names are looked up: default the built-ins plus {@code ppl} for {@code perplexity}. */
        public Builder registry(MetricRegistry v) { registry = v; return this; }
        public Builder maxNewTokens(int v) { maxNewTokens = v; return this; }
        public Builder batchSize(int v) { batchSize = v; return this; }
        /** The data-parallel group (null: one rank); this rank and the size are the group's. */
        public Builder communicator(Communicator v) { group = v; return this; }
        public Builder eosIds(int... v) { eosIds = v.clone(); return this; }
        /** A JSONL file for the predictions ({@code {"input", "pred", "target"}}), written atomically by rank 0. */
        public Builder predictionsFile(Path v) { predictionsFile = v; return this; }

        /**
         * @throws CollieException for a missing part, an unknown metric (listing the known ones), two metrics that
         *                         report the same key, bad settings or bad data (naming {@code file:line})
         */
        public Evaluator build() {
            if (model == null || tokenizer == null || task == null) {
                throw new CollieException("an evaluator needs a model, a tokenizer and a task");
            }
            if (batchSize < 1) {
                throw new CollieException("the evaluation batch size must be >= 1, got " + batchSize);
            }
            if (maxNewTokens != null && maxNewTokens < 1) {
                throw new CollieException("max new tokens must be >= 1, got " + maxNewTokens);
            }
            if (predictionsFile != null && task == EvalTask.PPL) {
                throw new CollieException("the ppl task makes no predictions to write; drop the predictions file");
            }
            Map<String, String> owner = new LinkedHashMap<>();
            Map<String, Metric> made = metrics(owner);
            List<EvalExample> data = examples != null ? examples
                    : dataFile != null ? EvalData.read(dataFile, task) : null;
            if (data == null || data.isEmpty()) {
                throw new CollieException("an evaluator needs examples: give data(Path) or data(List)");
            }
            for (EvalExample e : data) {
                boolean fits = task.classification() ? !e.options().isEmpty() : !e.outputs().isEmpty();
                if (!fits) {
                    throw new CollieException(e.source() + ": not a " + task.cliName() + " example");
                }
            }
            return new Evaluator(this, data, made, List.copyOf(owner.keySet()));
        }

        /**
         * The keys an evaluator built from this builder reports ({@link Evaluator#producedKeys()}), from the task and
         * the metric names alone: known before a model or data is given.
         *
         * @throws CollieException without a task, or for the metrics as {@link #build()}
         */
        public List<String> producedKeys() {
            if (task == null) {
                throw new CollieException("an evaluator's keys depend on its task: give one");
            }
            Map<String, String> owner = new LinkedHashMap<>();
            metrics(owner);
            return List.copyOf(owner.keySet());
        }

        /** The named metrics (or the task's), by name; {@code owner} receives each reported key and its metric. */
        private Map<String, Metric> metrics(Map<String, String> owner) {
            MetricRegistry reg = registry != null ? registry
                    : MetricRegistry.withBuiltIns().register("ppl", PerplexityMetric::new);
            Map<String, Metric> made = new LinkedHashMap<>();
            for (String name : metricNames != null ? metricNames : task.defaultMetrics()) {
                String key = name.strip().toLowerCase(Locale.ROOT);
                Metric m = reg.create(key);
                if (made.putIfAbsent(key, m) != null) {
                    throw new CollieException("metric '" + key + "' is named twice");
                }
                for (String k : m.get().keySet()) {
                    String before = owner.putIfAbsent(k, key);
                    if (before != null) {
                        throw new CollieException("metrics '" + before + "' and '" + key + "' both report '" + k
                                + "'; name only one of them");
                    }
                }
            }
            return made;
        }
    }
}
