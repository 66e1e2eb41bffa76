package dev.collie.examples.cli;

import dev.collie.core.tensor.Backends;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static dev.collie.examples.cli.CliTest.TINY;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SIGTERM to a training process or its launcher: the step finishes, a checkpoint is written, nobody is orphaned. */
class StopSignalsTest {
    private static final String[] TRAIN = {"train", "--model", TINY.toString(), "--data",
        TINY.resolve("adamw_rows.jsonl").toString(), "--no-shuffle", "--log-every", "1", "--lr", "1e-2"};

    /** The CLI as its own process (its main, as the runnable jar starts it). */
    private static Process start(List<String> args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(Backends.childJvmOptions());   // the kernels of this JVM, whose resumed run it is compared with
        cmd.addAll(List.of("-Xmx512m", "-cp", System.getProperty("java.class.path"), CollieCli.class.getName()));
        cmd.addAll(args);
        return new ProcessBuilder(cmd).redirectErrorStream(true).start();
    }

    /**
     * The process's output, read by a thread of its own from the start (a reader started late loses the stream when
     * the process exits); {@link #awaitLine} waits for a line.
     */
    private static final class Output {
        private final StringBuffer text = new StringBuffer();
        private final Thread reader;

        Output(Process p) {
            reader = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(),
                        StandardCharsets.UTF_8))) {
                    for (String line = r.readLine(); line != null; line = r.readLine()) {
                        text.append(line).append('\n');
                    }
                } catch (IOException ignored) {
                    // the process is gone; what was read is kept
                }
            });
            reader.setDaemon(true);
            reader.start();
        }

        void awaitLine(String prefix, Process p) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (!text.toString().contains("\n" + prefix) && System.nanoTime() < deadline) {
                if (!p.isAlive() && !reader.isAlive()) {
                    throw new AssertionError("the process ended before '" + prefix + "':\n" + text);
                }
                Thread.sleep(20);
            }
        }

        String all() throws InterruptedException {
            reader.join(10_000);
            return text.toString();
        }
    }

    /** SIGTERM, as kill sends it (Process.destroy also closes the pipes, losing what the process prints next). */
    private static void sigterm(Process p) throws IOException, InterruptedException {
        assertEquals(0, new ProcessBuilder("kill", "-TERM", Long.toString(p.pid())).start().waitFor());
    }

    private static List<String> args(String... more) {
        List<String> a = new ArrayList<>(List.of(TRAIN));
        a.addAll(List.of(more));
        return a;
    }

    @Test
    void sigtermFinishesTheStepWritesACheckpointAndExits143ThenResumeIsExact(@TempDir Path tmp) throws Exception {
        Path ck = tmp.resolve("ck");
        Process p = start(args("--steps", "100000", "--save", tmp.resolve("out").toString(),
                "--checkpoint-dir", ck.toString()));
        Output output = new Output(p);
        output.awaitLine("step 3/", p);
        sigterm(p);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "stopped within a minute");
        String out = output.all();
        assertEquals(143, p.exitValue(), out);
        assertTrue(out.contains("stopped by SIGTERM after step "), out);
        assertFalse(Files.exists(tmp.resolve("out/config.json")), "--save is left as it was");
        List<Path> steps;
        try (var s = Files.list(ck)) {
            steps = s.toList();
        }
        assertEquals(1, steps.size(), String.valueOf(steps));
        Path step = steps.get(0);
        assertTrue(Files.isRegularFile(step.resolve("trainer.json")), "a complete checkpoint: " + step);
        long n = Long.parseLong(step.getFileName().toString().substring("step_".length()));

        // resumed to n + 2 steps, the weights are those of a run of n + 2 steps never stopped
        String total = Long.toString(n + 2);
        CliTest.Result resumed = CliTest.run(args("--steps", total, "--save", tmp.resolve("resumed").toString(),
                "--resume", step.toString()).toArray(String[]::new));
        assertEquals(0, resumed.code(), resumed.err());
        CliTest.Result straight = CliTest.run(args("--steps", total, "--save", tmp.resolve("straight").toString())
                .toArray(String[]::new));
        assertEquals(0, straight.code(), straight.err());
        assertEquals(-1, Files.mismatch(tmp.resolve("resumed/model.safetensors"),
                tmp.resolve("straight/model.safetensors")), "bit for bit");
    }

    @Test
    void sigtermToTheLauncherStopsEveryRankWithACheckpointAndLeavesNoOrphan(@TempDir Path tmp) throws Exception {
        Path ck = tmp.resolve("ck");
        List<String> a = new ArrayList<>(List.of("launch", "--nproc", "2", "--java-opts", "-Xmx384m", "--"));
        a.addAll(args("--backend", "tcp", "--steps", "100000", "--save", tmp.resolve("out").toString(),
                "--checkpoint-dir", ck.toString()));
        Process launcher = start(a);
        Output output = new Output(launcher);
        output.awaitLine("step 3/", launcher);
        List<ProcessHandle> ranks = launcher.descendants().toList();
        assertEquals(2, ranks.size(), String.valueOf(ranks));
        sigterm(launcher);                               // forwarded to both ranks
        assertTrue(launcher.waitFor(60, TimeUnit.SECONDS));
        String out = output.all();
        assertEquals(143, launcher.exitValue(), out);
        assertTrue(out.contains("stopped by SIGTERM after step "), out);
        for (ProcessHandle r : ranks) {
            assertFalse(r.isAlive(), "rank " + r.pid() + " outlived its launcher");
        }
        try (var s = Files.list(ck)) {
            assertEquals(1, s.filter(d -> Files.isRegularFile(d.resolve("trainer.json"))).count());
        }
    }

    @Test
    void ranksDieWithAKilledLauncher(@TempDir Path tmp) throws Exception {
        List<String> a = new ArrayList<>(List.of("launch", "--nproc", "2", "--java-opts", "-Xmx384m", "--"));
        a.addAll(args("--backend", "tcp", "--steps", "100000", "--save", tmp.resolve("out").toString()));
        Process launcher = start(a);
        new Output(launcher).awaitLine("step 2/", launcher);
        List<ProcessHandle> ranks = launcher.descendants().toList();
        launcher.destroyForcibly();                      // SIGKILL: nothing can be forwarded
        for (ProcessHandle r : ranks) {
            r.onExit().get(20, TimeUnit.SECONDS);
        }
        assertFalse(Files.exists(tmp.resolve("out/config.json")), "no orphan went on to write --save");
    }
}
