package dev.collie.examples.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;

import static dev.collie.examples.cli.CliTest.TOKENIZER;
import static dev.collie.examples.cli.CliTest.assertUserError;
import static dev.collie.examples.cli.CliTest.concat;
import static dev.collie.examples.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code collie train --monitor ...}: the files it writes, and its options' errors before any work. */
class MonitorCliTest {
    private static Path text(Path tmp) throws IOException {
        Path text = tmp.resolve("tale.txt");
        Files.writeString(text, String.join("\n\n", Collections.nCopies(6,
                "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my"
                        + " purse, I thought I would sail about a little and see the watery part of the world.")));
        return text;
    }

    @Test
    void trainWritesEveryNthStepToCsvJsonlAndTensorBoardWithADashboard(@TempDir Path tmp) throws IOException {
        Path mon = tmp.resolve("monitor");
        CliTest.Result r = run("train", "--preset", "tiny", "--data", text(tmp).toString(), "--tokenizer",
                TOKENIZER.toString(), "--seq", "16", "--micro-batch", "4", "--steps", "4", "--eval-fraction", "0.2",
                "--eval-every", "2", "--save", tmp.resolve("model").toString(),
                "--monitor", "csv,jsonl,tensorboard", "--monitor-dir", mon.toString(), "--monitor-every", "2");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("monitor: " + mon + " (csv, jsonl, tensorboard, dashboard.png)"), r.out());
        List<String> csv = Files.readAllLines(mon.resolve("metrics.csv"));
        assertEquals(3, csv.size(), "header and steps 2 and 4: " + csv);
        assertTrue(csv.get(0).startsWith("step,wall_time,loss,lr,tgs,tokens_per_s,grad_norm,memory_mib,"), csv.get(0));
        assertTrue(csv.get(1).startsWith("2,") && csv.get(2).startsWith("4,"), csv.toString());
        assertEquals(3, Files.readAllLines(mon.resolve("eval.csv")).size(), "evaluations after steps 2 and 4");
        assertEquals(4, Files.readAllLines(mon.resolve("metrics.jsonl")).size());
        try (var files = Files.list(mon)) {
            assertEquals(1, files.filter(p -> p.getFileName().toString().startsWith("events.out.tfevents.")).count());
        }
        assertNotNull(ImageIO.read(mon.resolve("dashboard.png").toFile()), "a PNG");

        // on demand, from metrics.jsonl
        Path png = tmp.resolve("now.png");
        CliTest.Result d = run("dashboard", "--monitor-dir", mon.toString(), "--out", png.toString());
        assertEquals(0, d.code(), d.err());
        assertEquals("dashboard of 2 logged steps: " + png, d.out().strip());
        assertNotNull(ImageIO.read(png.toFile()), "a PNG");
        assertUserError(run("dashboard", "--monitor-dir", tmp.toString()), "has no metrics.jsonl",
                "--monitor jsonl");
    }

    @Test
    void badMonitorOptionsAreRefusedBeforeTraining(@TempDir Path tmp) throws IOException {
        String data = text(tmp).toString();
        String save = tmp.resolve("model").toString();
        String[] base = {"train", "--preset", "tiny", "--data", data, "--tokenizer", TOKENIZER.toString(),
            "--seq", "16",
            "--steps", "1", "--save", save};
        assertUserError(run(concat(base, "--monitor", "csv,tensorbord", "--monitor-dir", tmp.resolve("m").toString())),
                "--monitor: unknown monitor 'tensorbord'; known: csv, jsonl, tensorboard");
        assertUserError(run(concat(base, "--monitor", "csv")), "--monitor needs --monitor-dir DIR");
        assertUserError(run(concat(base, "--monitor-dir", tmp.resolve("m").toString())),
                "--monitor-dir: give --monitor csv,jsonl,tensorboard");
        assertUserError(run(concat(base, "--monitor", "csv", "--monitor-dir", tmp.resolve("m").toString(),
                "--monitor-every", "0")), "--monitor-every 0: must be at least 1");
        assertUserError(run(concat(base, "--monitor", "jsonl", "--monitor-dir", tmp.resolve("model/mon").toString())),
                "is inside --save");
        assertTrue(!Files.exists(tmp.resolve("m")) && !Files.exists(tmp.resolve("model")), "nothing written");
    }
}
