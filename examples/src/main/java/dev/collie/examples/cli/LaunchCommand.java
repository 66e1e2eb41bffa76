package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/**
 * {@code collie launch --nproc N -- <collie command ...>}: starts N JVMs on this machine, one per rank,
 * with the environment torchrun gives ({@code RANK}, {@code LOCAL_RANK}, {@code WORLD_SIZE},
 * {@code LOCAL_WORLD_SIZE}, {@code MASTER_ADDR}, {@code MASTER_PORT}, and {@code OMP_NUM_THREADS} = cores ÷ N
 * unless set); if one fails the others are stopped and its exit code is returned.
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
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<Process> ranks = new ArrayList<>();
        try {
            for (int r = 0; r < nproc; r++) {
                List<String> cmd = new ArrayList<>();
                cmd.add(java);
                for (String o : javaOpts.trim().split("\\s+")) {
                    if (!o.isEmpty()) {
                        cmd.add(o);
                    }
                }
                cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), CollieCli.class.getName()));
                cmd.addAll(command);
                ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
                pb.environment().put("RANK", Integer.toString(r));
                pb.environment().put("LOCAL_RANK", Integer.toString(r));
                pb.environment().put("WORLD_SIZE", Integer.toString(nproc));
                pb.environment().put("LOCAL_WORLD_SIZE", Integer.toString(nproc));
                pb.environment().put("MASTER_ADDR", "127.0.0.1");
                pb.environment().put("MASTER_PORT", Integer.toString(port));
                // the cores are shared out between the ranks (as torchrun does): without this each JVM's
                // OpenMP pool takes every core and the ranks oversubscribe them (2013 vs 3715 tokens/s, 2 ranks)
                String threads = Integer.toString(Math.max(1, Runtime.getRuntime().availableProcessors() / nproc));
                pb.environment().putIfAbsent("OMP_NUM_THREADS", threads);
                pb.environment().putIfAbsent("OPENBLAS_NUM_THREADS", threads);
                ranks.add(pb.start());
            }
            return waitAll(ranks);
        } finally {
            ranks.forEach(Process::destroyForcibly);
        }
    }

    /** The first non-zero exit code (the others are stopped then), or 0 when every rank succeeds. */
    private static int waitAll(List<Process> ranks) throws InterruptedException {
        List<Process> running = new ArrayList<>(ranks);
        while (!running.isEmpty()) {
            for (Process p : new ArrayList<>(running)) {
                if (p.waitFor(100, TimeUnit.MILLISECONDS)) {
                    running.remove(p);
                    if (p.exitValue() != 0) {
                        System.err.println("collie launch: rank " + ranks.indexOf(p) + " exited with code "
                                + p.exitValue() + "; stopping the other ranks");
                        return p.exitValue();
                    }
                }
            }
        }
        return 0;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
