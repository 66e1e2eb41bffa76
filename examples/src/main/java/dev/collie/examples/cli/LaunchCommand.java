package dev.collie.examples.cli;

import dev.collie.core.tensor.Backends;
import dev.collie.core.CollieException;
import dev.collie.parallel.comm.JobSecret;
import dev.collie.parallel.comm.LaunchEnv;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * {@code collie launch --nproc N -- <collie command ...>}: starts N JVMs on this machine, one per rank,
 * with the environment torchrun gives ({@code RANK}, {@code LOCAL_RANK}, {@code WORLD_SIZE},
 * {@code LOCAL_WORLD_SIZE}, {@code MASTER_ADDR}, {@code MASTER_PORT}, and {@code OMP_NUM_THREADS} = cores ÷ N
 * unless set) and a fresh secret for the job ({@code COLLIE_JOB_SECRET}, 256 random bits); if one fails the others
 * are stopped and its exit code is returned.
 */
@Command(name = "launch", mixinStandardHelpOptions = true,
        description = "Run a collie command as N processes (ranks) on this machine, e.g."
                + " launch --nproc 2 -- train ... --backend tcp")
final class LaunchCommand implements Callable<Integer> {
    @Option(names = "--nproc", paramLabel = "N", required = true, description = "processes (ranks) to start")
    int nproc;
    @Option(names = "--master-port", paramLabel = "PORT", description = "rendezvous port (default: a free one)")
    Integer masterPort;
    @Option(names = "--java-opts", paramLabel = "OPTS", defaultValue = "-Xmx1g",
            description = "options for each rank's JVM (default ${DEFAULT-VALUE})")
    String javaOpts;
    @Parameters(paramLabel = "COMMAND", description = "the collie command and its options, after --")
    List<String> command;

    @Override
    public Integer call() throws Exception {
        if (nproc < 1) {
            throw new CollieException("--nproc must be >= 1, got " + nproc);
        }
        if (command == null || command.isEmpty()) {
            throw new CollieException("give the collie command to run after --, e.g. launch --nproc 2 -- train ...");
        }
        int port = masterPort != null ? masterPort : freePort();
        List<Map<String, String>> environments = rankEnvironments(System.getenv(), port);
        List<Process> ranks = new CopyOnWriteArrayList<>();
        if (CollieCli.standalone) {
            // SIGTERM/SIGINT go on to every rank (each finishes its step and writes its checkpoint); a second one too
            StopSignals.install(signal -> ranks.forEach(p -> forward(signal, p)));
        }
        try {
            for (Map<String, String> env : environments) {
                ProcessBuilder pb = new ProcessBuilder(rankCommand()).inheritIO();
                pb.environment().clear();
                pb.environment().putAll(env);
                ranks.add(pb.start());
            }
            return waitAll(ranks);
        } finally {
            ranks.forEach(Process::destroyForcibly);
        }
    }

    /** Sends {@code signal} ("TERM", "INT") to a rank's process. */
    private static void forward(String signal, Process p) {
        try {
            new ProcessBuilder("kill", "-" + signal, Long.toString(p.pid())).inheritIO().start();
        } catch (IOException e) {
            p.destroy();        // SIGTERM, the one Java can send itself
        }
    }

    /** The command line of every rank's JVM (the same for all: what differs goes in the environment). */
    List<String> rankCommand() {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(Backends.childJvmOptions());   // the ranks compute with this process's kernels
        for (String o : javaOpts.trim().split("\\s+")) {
            if (!o.isEmpty()) {
                cmd.add(o);
            }
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), CollieCli.class.getName()));
        cmd.addAll(command);
        return cmd;
    }

    /**
     * The environments of the ranks' processes: {@code base} (this process's) with each rank's torchrun variables,
     * the thread counts, and one fresh secret for the job, in {@code COLLIE_JOB_SECRET} (the environment, where
     * {@code ps} does not show it) and in place of any secret file this process was given.
     */
    List<Map<String, String>> rankEnvironments(Map<String, String> base, int port) {
        String secret = JobSecret.generate();
        // the cores are shared out between the ranks (as torchrun does): without this each JVM's
        // OpenMP pool takes every core and the ranks oversubscribe them (2013 vs 3715 tokens/s, 2 ranks)
        String threads = Integer.toString(Math.max(1, Runtime.getRuntime().availableProcessors() / nproc));
        List<Map<String, String>> out = new ArrayList<>();
        for (int r = 0; r < nproc; r++) {
            Map<String, String> env = new HashMap<>(base);
            env.put("RANK", Integer.toString(r));
            env.put("LOCAL_RANK", Integer.toString(r));
            env.put("WORLD_SIZE", Integer.toString(nproc));
            env.put("LOCAL_WORLD_SIZE", Integer.toString(nproc));
            env.put("MASTER_ADDR", "127.0.0.1");
            env.put("MASTER_PORT", Integer.toString(port));
            env.put(LaunchEnv.JOB_SECRET, secret);
            env.put("COLLIE_LAUNCHER_PID", Long.toString(ProcessHandle.current().pid()));
            env.remove(LaunchEnv.JOB_SECRET_FILE);
            env.putIfAbsent("OMP_NUM_THREADS", threads);
            env.putIfAbsent("OPENBLAS_NUM_THREADS", threads);
            out.add(env);
        }
        return out;
    }

    /** The first non-zero exit code (the others are stopped then), or 0 when every rank succeeds. */
    private static int waitAll(List<Process> ranks) throws InterruptedException {
        List<Process> running = new ArrayList<>(ranks);
        while (!running.isEmpty()) {
            for (Process p : new ArrayList<>(running)) {
                if (p.waitFor(100, TimeUnit.MILLISECONDS)) {
                    running.remove(p);
                    // after a stop signal the ranks end with its code once their checkpoint is written: wait for all
                    if (p.exitValue() != 0 && !(StopSignals.requested() && isSignalExit(p.exitValue()))) {
                        System.err.println("collie launch: rank " + ranks.indexOf(p) + " exited with code "
                                + p.exitValue() + "; stopping the other ranks");
                        return p.exitValue();
                    }
                }
            }
        }
        return StopSignals.signal().map(StopSignals::exitCode).orElse(0);
    }

    private static boolean isSignalExit(int code) {
        return code == StopSignals.exitCode("TERM") || code == StopSignals.exitCode("INT");
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
