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
    @Option(names = "--model", paramLabel = "DIR", required = true, description = "Hugging Face model directory")
    Path model;
    @CommandLine.Mixin AdapterOptions adapter;
    @Option(names = "--data", paramLabel = "FILE", required = true, description = "evaluation data (JSONL)")
    Path data;
    @Option(names = "--task", paramLabel = "TASK", required = true,
            description = "ppl, generation or classification")
    String task;
    @Option(names = "--style", paramLabel = "STYLE", defaultValue = "harness",
            description = "classification: harness (option with the smallest loss, default) or helm (generated"
                    + " text matched to an option)")
    String style;
    @Option(names = "--metrics", paramLabel = "NAMES", split = ",",
            description = "metrics, e.g. bleu,rouge,accuracy,f1,ppl (default: ppl; bleu,rouge; accuracy)")
    List<String> metrics;
    @Option(names = "--max-new-tokens", paramLabel = "N",
            description = "tokens generated per example (default 32; helm 3)")
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
        EvalTask t = EvalTask.parse(task);
        if (t == EvalTask.CLASSIFICATION_HARNESS) {
            t = switch (style.strip().toLowerCase(Locale.ROOT)) {
                case "harness" -> EvalTask.CLASSIFICATION_HARNESS;
                case "helm" -> EvalTask.CLASSIFICATION_HELM;
                default -> throw new CollieException("--style must be harness or helm, got '" + style + "'");
            };
        }
        if (predictions != null) {
            CliSupport.outputFile("--predictions", predictions);
        }
        DecoderForCausalLM net = CliSupport.loadModel(model);
        HfTokenizer tok = CliSupport.requiredTokenizer(tokenizerPath, model, net.config(), "eval");
        try {
            int[] eos = CliSupport.eosIds(net.config(), tok);
            Evaluator.Builder b = Evaluator.builder().model(adapter.apply(net)).tokenizer(tok).data(data).task(t)
                    .batchSize(batchSize).eosIds(eos).predictionsFile(predictions);
            if (metrics != null) {
                b.metrics(metrics);
            }
            if (maxNewTokens != null) {
                b.maxNewTokens(maxNewTokens);
            }
            Map<String, Double> result = b.build().evaluate();
            result.forEach((k, v) -> System.out.println(format(k, v)));
        } finally {
            tok.close();
        }
        return 0;
    }

    /** {@code name: value}, the value with 4 decimals ({@code NaN} when there was nothing to average). */
    static String format(String name, double value) {
        return name + ": " + (Double.isNaN(value) ? "NaN" : String.format(Locale.ROOT, "%.4f", value));
    }
}
