package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.train.LanguageModel;
import dev.collie.models.eval.EvalData;
import dev.collie.models.eval.EvalExample;
import dev.collie.models.eval.EvalTask;
import dev.collie.models.eval.Evaluator;
import dev.collie.models.tokenizer.HfTokenizer;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;

/**
 * {@code train}'s flags for an {@link Evaluator} run with the training's evaluations (a picocli mixin):
 * {@code --eval-task} over {@code --eval-data}, read as {@code collie eval} reads {@code --task} and {@code --data}
 * ({@link EvalCommand#task}, {@link EvalCommand#evaluator}). Checked, and the data read, before any work.
 */
final class EvalTaskOptions {
    @Option(names = "--eval-task", paramLabel = "TASK",
            description = "evaluate with this task too, every --eval-every steps and at the end: ppl, generation or"
                    + " classification (as collie eval --task); its values join the evaluation's (--monitor's"
                    + " eval/NAME, --monitor-metric NAME)")
    String task;
    @Option(names = "--eval-data", paramLabel = "FILE", description = "--eval-task's examples (JSONL, as collie eval)")
    Path data;
    @Option(names = "--eval-style", paramLabel = "STYLE", description = EvalCommand.STYLE_HELP)
    String style;
    @Option(names = "--eval-metrics", paramLabel = "NAMES", split = ",", description = EvalCommand.METRICS_HELP)
    List<String> metrics;
    @Option(names = "--eval-max-new-tokens", paramLabel = "N", description = EvalCommand.MAX_NEW_TOKENS_HELP)
    Integer maxNewTokens;
    /** Set by {@link #check()}. */
    private EvalTask evalTask;
    private List<EvalExample> examples;
    private List<String> keys = List.of();

    boolean active() {
        return task != null;
    }

    /** The names the evaluator reports, known after {@link #check()} (none without {@code --eval-task}). */
    List<String> keys() {
        return keys;
    }

    /**
     * Refuses a flag of these without {@code --eval-task} and {@code --eval-task} without {@code --eval-data}, checks
     * the task, style and metrics, and reads the examples.
     */
    void check() {
        if (task == null) {
            String stray = data != null ? "--eval-data" : style != null ? "--eval-style" : metrics != null
                    ? "--eval-metrics" : maxNewTokens != null ? "--eval-max-new-tokens" : null;
            if (stray != null) {
                throw new CollieException(stray + " applies to --eval-task TASK: add it (ppl, generation or"
                        + " classification)");
            }
            return;
        }
        if (data == null) {
            throw new CollieException("--eval-task " + task + " needs --eval-data FILE, its examples (JSONL)");
        }
        evalTask = EvalCommand.task(task, style, "--eval-style");
        keys = EvalCommand.evaluator(evalTask, metrics, maxNewTokens).producedKeys();
        examples = EvalData.read(data, evalTask);
    }

    /**
     * This rank's evaluator of {@code model} (the one being trained); {@code dataParallel} is the group whose replicas
     * share the examples (null for one).
     */
    Evaluator evaluator(LanguageModel model, HfTokenizer tok, int[] eosIds, Communicator dataParallel) {
        return EvalCommand.evaluator(evalTask, metrics, maxNewTokens).model(model).tokenizer(tok).data(examples)
                .eosIds(eosIds).communicator(dataParallel).build();
    }
}
