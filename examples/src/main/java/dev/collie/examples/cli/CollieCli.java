package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.tensor.Backends;
import dev.collie.core.tensor.NativeStartupMessages;
import dev.collie.core.train.Memory;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The {@code collie} command line: train, score, generate, eval, serve, bench, launch. */
@Command(name = "collie", mixinStandardHelpOptions = true, version = "collie 0.1.0",
        description = "Train, score and sample LLaMA-family models on the JVM.",
        subcommands = {TrainCommand.class, ScoreCommand.class, GenerateCommand.class, EvalCommand.class,
                ServeCommand.class, BenchCommand.class, GenerateBenchCommand.class, LaunchCommand.class,
                DashboardCommand.class})
public final class CollieCli implements Runnable {
    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    public static void main(String[] args) {
        // a process of its own (not run() inside a test): SIGTERM and SIGINT stop a training run after its step,
        // and a rank of 'collie launch' ends with its launcher
        standalone = true;
        StopSignals.exitWithLauncher();
        System.exit(run(args));
    }

    /** Whether this JVM is the CLI's own process, where it may install signal handlers. */
    static volatile boolean standalone;

    /** Runs the CLI and returns its exit code; user errors print one line, not a stack trace. */
    public static int run(String... args) {
        NativeStartupMessages.quiet();
        // the HTTP server of serve and train --serve: its start and stop, not each of its parts
        for (String server : new String[] {"org.eclipse.jetty", "io.javalin"}) {
            if (System.getProperty("org.slf4j.simpleLogger.log." + server) == null) {
                System.setProperty("org.slf4j.simpleLogger.log." + server, "warn");
            }
        }
        CommandLine cl = new CommandLine(new CollieCli());
        // ND4J starts (a second, and its banner) only for a command that runs: help, version and the bare command
        // answer at once
        cl.setExecutionStrategy(parsed -> {
            Integer help = CommandLine.executeHelpRequest(parsed);
            if (help != null) {
                return help;
            }
            if (parsed.subcommand() != null) {
                Backends.configure(Runtime.getRuntime().availableProcessors());
                Memory.limitNd4jAllocations();     // beyond it ND4J throws instead of crashing the JVM
            }
            return new CommandLine.RunLast().execute(parsed);
        });
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            if (ex instanceof CollieException) {
                cmd.getErr().println("error: " + ex.getMessage());
                return 2;
            }
            String oom = outOfMemory(ex);
            if (oom != null) {
                cmd.getErr().println("error: " + oom);
                return 2;
            }
            throw ex;
        });
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            cl.getErr().println("error: " + outOfMemory(e));
            cl.getErr().flush();
            return 2;
        }
    }

    private static final Pattern BYTES = Pattern.compile("(?:allocate|Requested bytes:) \\[?(\\d+)\\]?");

    /**
     * One line for an allocation that failed ({@code e} or a cause of it: the Java heap, ND4J's off-heap "Failed to
     * allocate", JavaCPP's limit, a native bad_alloc), naming where it happened and the size when known; null when
     * {@code e} is not about memory.
     */
    static String outOfMemory(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = String.valueOf(t.getMessage());
            if (t instanceof OutOfMemoryError || m.contains("Cannot allocate") || m.contains("bad_alloc")
                    || m.contains("Failed to allocate") || m.contains("Allocation failed")) {
                Matcher b = BYTES.matcher(m);
                String what = b.find() ? "could not allocate " + Memory.format(Long.parseLong(b.group(1)))
                        : m.equals("Java heap space") ? "the Java heap is full (its size is set with -Xmx)"
                        : m.lines().findFirst().orElse(t.getClass().getSimpleName());
                return "out of memory" + where(t) + ": " + what
                        + "; try a smaller --seq, micro-batch (train --micro-batch, bench --batch) or model";
            }
        }
        return null;
    }

    /** {@code " in Attention.forward"}: the innermost frame of this project's code, or "" if there is none. */
    private static String where(Throwable t) {
        for (StackTraceElement f : t.getStackTrace()) {
            if (f.getClassName().startsWith("dev.collie.") && !f.getClassName().startsWith(CollieCli.class.getName())) {
                String c = f.getClassName();
                return " in " + c.substring(c.lastIndexOf('.') + 1).replace('$', '.') + "." + f.getMethodName();
            }
        }
        return "";
    }
}
