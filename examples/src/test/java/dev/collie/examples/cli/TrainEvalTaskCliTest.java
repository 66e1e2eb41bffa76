package dev.collie.examples.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static dev.collie.examples.cli.CliTest.TOKENIZER;
import static dev.collie.examples.cli.CliTest.assertUserError;
import static dev.collie.examples.cli.CliTest.concat;
import static dev.collie.examples.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code collie train --eval-task TASK --eval-data FILE}: the evaluator runs with the training's evaluations over the
 * data-parallel ranks, its values reach the monitor and the checkpoints kept by {@code --monitor-metric}; its flags'
 * errors come before any work.
 */
class TrainEvalTaskCliTest {
    /** A tiny preset over packed text, with the repository's tokenizer. */
    private static String[] train(Path tmp) throws IOException {
        Path text = Files.writeString(tmp.resolve("tale.txt"), String.join("\n\n", Collections.nCopies(6,
                "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my"
                        + " purse, I thought I would sail about a little and see the watery part of the world.")));
        Path gen = Files.writeString(tmp.resolve("gen.jsonl"), """
                {"input": "Call me", "output": "Ishmael. Some years ago"}
                {"input": "Some years ago,", "output": "never mind how long precisely"}
                {"input": "I thought I would", "output": "sail about a little"}
                """);
        return new String[] {"train", "--preset", "tiny", "--data", text.toString(), "--tokenizer",
            TOKENIZER.toString(), "--seq", "16", "--micro-batch", "2", "--save", tmp.resolve("model").toString(),
            "--eval-task", "generation", "--eval-data", gen.toString(), "--eval-max-new-tokens", "4"};
    }

    @Test
    void anEvalTaskUnderDataParallelFeedsTheMonitorAndTheTopKCheckpoints(@TempDir Path tmp) throws IOException {
        Path mon = tmp.resolve("monitor");
        Path ckpt = tmp.resolve("ckpt");
        CliTest.Result r = run(concat(train(tmp), "--dp", "2", "--steps", "7", "--eval-every", "2",
                "--monitor", "csv,jsonl", "--monitor-dir", mon.toString(), "--save-top-k", "2", "--monitor-metric",
                "bleu", "--metric-mode", "max", "--checkpoint-dir", ckpt.toString()));
        assertEquals(0, r.code(), r.err());
        // after steps 2, 4 and 6, and at the end
        List<String> eval = Files.readAllLines(mon.resolve("eval.csv"));
        assertEquals(5, eval.size(), eval.toString());
        assertTrue(eval.get(0).startsWith("step,wall_time,bleu,rouge-1-p,"), eval.get(0));
        assertTrue(eval.get(4).startsWith("7,"), eval.get(4));
        assertEquals(4, Files.readAllLines(mon.resolve("metrics.jsonl")).stream()
                .filter(l -> l.contains("\"eval/bleu\":") && l.contains("\"eval/rouge-l-f\":")).count());
        // the two best of the evaluations during training by BLEU (of equals, the newer), each named with its place
        // (epoch and batch after the step, 2 replicas × 2 rows a step) and value
        Matcher rows = Pattern.compile("data: (\\d+) training rows").matcher(r.out());
        assertTrue(rows.find(), r.out());
        long perEpoch = Long.parseLong(rows.group(1)) / 4;
        Map<Long, Double> bleu = new TreeMap<>();
        for (String row : eval.subList(1, 4)) {
            String[] f = row.split(",");
            bleu.put(Long.parseLong(f[0]), Double.parseDouble(f[2]));
        }
        List<String> best = bleu.entrySet().stream()
                .sorted(Comparator.comparing((Map.Entry<Long, Double> e) -> e.getValue()).thenComparing(Map.Entry::getKey)
                        .reversed()).limit(2)
                .map(e -> "epoch_" + (e.getKey() - 1) / perEpoch + "-batch_" + (e.getKey() - 1) % perEpoch + "-bleu_"
                        + e.getValue()).sorted().toList();
        List<String> kept;
        try (Stream<Path> s = Files.list(ckpt)) {
            kept = s.map(p -> p.getFileName().toString()).filter(n -> !n.startsWith(".")).sorted().toList();
        }
        assertEquals(best, kept, eval.toString());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("eval bleu: \\d\\.\\d{4}")), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("eval rouge-l-f: \\d\\.\\d{4}")), r.out());
    }

    @Test
    void badEvalTaskFlagsAreRefusedBeforeTraining(@TempDir Path tmp) throws IOException {
        String[] base = train(tmp);
        assertUserError(run(concat(base, "--steps", "1", "--save-top-k", "2", "--monitor-metric", "nosuch",
                "--eval-every", "1")), "--monitor-metric nosuch: the evaluation does not report it; it reports bleu,"
                + " rouge-1-p, rouge-1-r, rouge-1-f, rouge-2-p, rouge-2-r, rouge-2-f, rouge-l-p, rouge-l-r, rouge-l-f");
        assertUserError(run(concat(base, "--steps", "1", "--save-top-k", "2", "--monitor-metric", "nosuch",
                "--eval-every", "1", "--eval-fraction", "0.2")), "it reports loss, ppl, bleu, rouge-1-p,");
        assertUserError(run(concat(base, "--steps", "1", "--tp", "2")),
                "--eval-task runs over data-parallel ranks only", "drop --tp 2 and --pp 1");
        assertUserError(run(concat(base, "--steps", "1", "--eval-metrics", "bleu,blue")), "unknown metric 'blue'");
        String[] noTask = Stream.of(base).limit(base.length - 6).toArray(String[]::new);
        assertUserError(run(concat(noTask, "--steps", "1", "--eval-task", "ppl", "--eval-data",
                tmp.resolve("gen.jsonl").toString(), "--eval-fraction", "0.2")),
                "--eval-task ppl reports 'loss', as --eval-fraction's evaluation does");
        assertUserError(run(concat(noTask, "--steps", "1", "--eval-data", "gen.jsonl")),
                "--eval-data applies to --eval-task TASK");
        assertUserError(run(concat(noTask, "--steps", "1", "--eval-task", "generation")),
                "--eval-task generation needs --eval-data FILE");
        assertUserError(run(concat(noTask, "--steps", "1", "--eval-every", "1")),
                "--eval-every needs evaluation data", "or --eval-task TASK --eval-data FILE");
        assertFalse(Files.exists(tmp.resolve("model")), "nothing written");
    }
}
