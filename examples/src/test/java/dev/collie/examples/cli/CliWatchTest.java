package dev.collie.examples.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static dev.collie.examples.cli.CliTest.TINY;
import static dev.collie.examples.cli.CliTest.assertUserError;
import static dev.collie.examples.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code train --save-top-k K --monitor-metric NAME [--metric-mode] --load-best --early-stop-patience N}: the best
 * checkpoints kept, the best weights saved, the run stopped early; and every flag that would watch nothing refused
 * with one error line before any work.
 */
class CliWatchTest {
    /** 20 rows of 12 random ids below the tiny model's 96. */
    private static Path rows(Path tmp) throws IOException {
        Random r = new Random(5);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            StringBuilder sb = new StringBuilder("{\"tokens\": [");
            for (int t = 0; t < 12; t++) {
                sb.append(t == 0 ? "" : ", ").append(r.nextInt(96));
            }
            lines.add(sb.append("]}").toString());
        }
        return Files.write(tmp.resolve("rows.jsonl"), lines);
    }

    private static List<String> train(Path tmp, String... more) throws IOException {
        List<String> args = new ArrayList<>(List.of("train", "--model", TINY.toString(), "--data",
                rows(tmp).toString(), "--micro-batch", "2", "--lr", "0.01", "--save", tmp.resolve("out").toString()));
        args.addAll(List.of(more));
        return args;
    }

    @Test
    void flagsThatWouldWatchNothingAreRefused(@TempDir Path tmp) throws IOException {
        assertUserError(run(train(tmp, "--save-top-k", "2").toArray(String[]::new)),
                "--save-top-k needs --monitor-metric NAME, the evaluation result it watches: one of loss, ppl");
        assertUserError(run(train(tmp, "--save-top-k", "2", "--monitor-metric", "acc", "--eval-fraction", "0.2",
                "--eval-every", "1").toArray(String[]::new)),
                "--monitor-metric acc: the evaluation does not report it; it reports loss, ppl");
        assertUserError(run(train(tmp, "--save-top-k", "2", "--monitor-metric", "ppl").toArray(String[]::new)),
                "--save-top-k watches the evaluation's ppl: add evaluation data, --eval-fraction F");
        assertUserError(run(train(tmp, "--load-best", "--monitor-metric", "ppl", "--eval-fraction", "0.2")
                .toArray(String[]::new)),
                "--load-best watches the evaluation's ppl during training: add --eval-every N");
        assertUserError(run(train(tmp, "--early-stop-patience", "2", "--monitor-metric", "loss", "--metric-mode",
                "lower").toArray(String[]::new)), "--metric-mode 'lower': expected min");
        assertUserError(run(train(tmp, "--monitor-metric", "loss").toArray(String[]::new)),
                "--monitor-metric applies to --save-top-k, --load-best or --early-stop-patience");
        assertUserError(run(train(tmp, "--early-stop-min-delta", "0.1").toArray(String[]::new)),
                "--early-stop-min-delta applies to --early-stop-patience N");
        assertUserError(run(train(tmp, "--early-stop-patience", "0", "--monitor-metric", "loss")
                .toArray(String[]::new)), "--early-stop-patience 0: must be at least 1");
        assertUserError(run(train(tmp, "--save-top-k", "0", "--monitor-metric", "loss").toArray(String[]::new)),
                "--save-top-k 0: must be at least 1, or -1");
        assertUserError(run(train(tmp, "--save-top-k", "2", "--monitor-metric", "loss", "--eval-fraction", "0.2",
                "--eval-every", "50", "--steps", "4").toArray(String[]::new)),
                "CheckpointCallback (top 2) watches 'loss', but config eval_per_n_steps = 50 leaves no evaluation");
    }

    @Test
    void topKBestAndEarlyStoppingFromTheCommandLine(@TempDir Path tmp) throws IOException {
        Path ckpt = tmp.resolve("ckpt");
        CliTest.Result r = run(train(tmp, "--steps", "16", "--eval-fraction", "0.25", "--eval-every", "1",
                "--save-top-k", "2", "--monitor-metric", "loss", "--load-best", "--early-stop-patience", "3",
                "--checkpoint-dir", ckpt.toString()).toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        Matcher stop = Pattern.compile("early stopping: loss did not improve in 3 evaluations; stopped after step"
                + " (\\d+) of 16").matcher(r.out());
        assertTrue(stop.find(), r.out());
        List<String> kept;
        try (Stream<Path> s = Files.list(ckpt)) {
            kept = s.map(p -> p.getFileName().toString()).filter(n -> !n.startsWith(".")).sorted().toList();
        }
        assertEquals(2, kept.size(), "the top 2 only (best is deleted once loaded): " + kept);
        double best = Double.MAX_VALUE;
        long bestStep = 0;
        for (String name : kept) {
            Matcher m = Pattern.compile("epoch_0-batch_(\\d+)-loss_([0-9.]+)").matcher(name);
            assertTrue(m.matches(), name);
            if (Double.parseDouble(m.group(2)) < best) {
                best = Double.parseDouble(m.group(2));
                bestStep = Long.parseLong(m.group(1)) + 1;
            }
        }
        // patience 3: the run ends 3 evaluations after its best (the last improvement)
        assertEquals(bestStep + 3, Long.parseLong(stop.group(1)), r.out());
        // the saved model has the best weights: their evaluation is the best one's
        Matcher eval = Pattern.compile("eval loss: ([0-9.]+)").matcher(r.out());
        assertTrue(eval.find(), r.out());
        assertEquals(best, Double.parseDouble(eval.group(1)), 1e-6);
        assertTrue(Files.isRegularFile(tmp.resolve("out/model.safetensors")));
    }
}
