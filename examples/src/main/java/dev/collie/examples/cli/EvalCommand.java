package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.eval.EvalTask;
import dev.collie.models.eval.Evaluator;
import dev.collie.models.tokenizer.HfTokenizer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code collie eval}: runs an {@link Evaluator} over a JSONL file and prints one {@code name: value} line a value. */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Evaluate a model on a JSONL file and print one 'name: value' line per value (4 decimals).",
            "ppl: {\"text\"} or {\"input\", \"output\"} lines; generation: {\"input\", \"output\"};"
                + " classification: {\"input\", \"options\": [...], \"target\": i}."})
final class EvalCommand implements Callable<Integer> {
    /** Descriptions of the flags {@code train --eval-task} shares, under its own names ({@link EvalTaskOptions}). */
    static final String STYLE_HELP = "classification: harness (option with the smallest loss, default) or helm"
            + " (generated text matched to an option)";
    static final String METRICS_HELP = "metrics, e.g. bleu,rouge,accuracy,f1,ppl (default: ppl; bleu,rouge; accuracy)";
    static final String MAX_NEW_TOKENS_HELP = "tokens generated per example (default 32; helm 3)";

    @Option(names = "--model", paramLabel = "DIR", required = true, description = "Hugging Face model directory")
    Path model;
    @CommandLine.Mixin AdapterOptions adapter;
    @Option(names = "--data", paramLabel = "FILE", required = true, description = "evaluation data (JSONL)")
    Path data;
    @Option(names = "--task", paramLabel = "TASK", required = true,
            description = "ppl, generation or classification")
    String task;
    @Option(names = "--style", paramLabel = "STYLE", defaultValue = "harness", description = STYLE_HELP)
    String style;
    @Option(names = "--metrics", paramLabel = "NAMES", split = ",", description = METRICS_HELP)
    List<String> metrics;
    @Option(names = "--max-new-tokens", paramLabel = "N", description = MAX_NEW_TOKENS_HELP)
    Integer maxNewTokens;
    @Option(names = "--batch-size", paramLabel = "B", defaultValue = "8", description = "examples per forward")
    int batchSize;
    @Option(names = "--predictions", paramLabel = "FILE.jsonl",
            description = "write {\"input\", \"pred\", \"target\"} lines (generation, classification)")
    Path predictions;
    @Option(names = "--tokenizer", paramLabel = "DIR",
            description = "tokenizer.json or its directory (default: the model directory)")
    Path tokenizerPath;

    @Override
    public Integer call() {
        EvalTask t = task(task, style, "--style");
        if (predictions != null) {
            CliSupport.outputFile("--predictions", predictions);
        }
        DecoderForCausalLM net = CliSupport.loadModel(model);
        HfTokenizer tok = CliSupport.requiredTokenizer(tokenizerPath, model, net.config(), "eval");
        try {
            int[] eos = CliSupport.eosIds(net.config(), tok);
            Map<String, Double> result = evaluator(t, metrics, maxNewTokens).model(adapter.apply(net)).tokenizer(tok)
                    .data(data).batchSize(batchSize).eosIds(eos).predictionsFile(predictions).build().evaluate();
            result.forEach((k, v) -> System.out.println(format(k, v)));
        } finally {
            tok.close();
        }
        return 0;
    }

    /**
     * The task named {@code task} (ppl, generation, classification) in {@code style} (harness, the default for null,
     * or helm; classification only), a bad style refused naming {@code styleFlag}: {@code eval --task --style} and
     * {@code train --eval-task --eval-style} both read theirs here.
     */
    static EvalTask task(String task, String style, String styleFlag) {
        EvalTask t = EvalTask.parse(task);
        if (t != EvalTask.CLASSIFICATION_HARNESS || style == null) {
            return t;
        }
        return switch (style.strip().toLowerCase(Locale.ROOT)) {
            case "harness" -> EvalTask.CLASSIFICATION_HARNESS;
            case "helm" -> EvalTask.CLASSIFICATION_HELM;
            default -> throw new CollieException(styleFlag + " must be harness or helm, got '" + style + "'");
        };
    }

    /** An evaluator's builder for {@code task} with the metrics and new tokens given (null: the task's defaults). */
    static Evaluator.Builder evaluator(EvalTask task, List<String> metrics, Integer maxNewTokens) {
        Evaluator.Builder b = Evaluator.builder().task(task);
        if (metrics != null) {
            b.metrics(metrics);
        }
        if (maxNewTokens != null) {
            b.maxNewTokens(maxNewTokens);
        }
        return b;
    }

    /** {@code name: value}, the value with 4 decimals ({@code NaN} when there was nothing to average). */
    static String format(String name, double value) {
        return name + ": " + (Double.isNaN(value) ? "NaN" : String.format(Locale.ROOT, "%.4f", value));
    }
}
