package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.tensor.Backends;
import dev.collie.core.tensor.NativeStartupMessages;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code collie} command line: train, score, generate, bench. */
@Command(name = "collie", mixinStandardHelpOptions = true, version = "collie 0.1.0",
        description = "Train, score and sample LLaMA-family models on the JVM.",
        subcommands = {TrainCommand.class, ScoreCommand.class, GenerateCommand.class, BenchCommand.class,
                LaunchCommand.class})
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
            }
            return new CommandLine.RunLast().execute(parsed);
        });
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            if (ex instanceof CollieException) {
                cmd.getErr().println("error: " + ex.getMessage());
                return 2;
            }
            throw ex;
        });
        return cl.execute(args);
    }
}
