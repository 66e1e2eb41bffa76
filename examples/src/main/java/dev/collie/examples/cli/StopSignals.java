package dev.collie.examples.cli;

import sun.misc.Signal;

import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * SIGTERM (what Slurm sends before preempting) and SIGINT (Ctrl-C) during {@code collie train}: the first asks the
 * run to stop after its current step (and to write a checkpoint); a second one stops the process at once. The exit
 * code is the shell's: 143 for SIGTERM, 130 for SIGINT.
 */
final class StopSignals {
    private static final List<String> NAMES = List.of("TERM", "INT");
    private static volatile String first;

    private StopSignals() {
    }

    /** Installs the handlers; {@code onSignal} also runs for each signal (the launcher forwards it). */
    static synchronized void install(Consumer<String> onSignal) {
        for (String name : NAMES) {
            Signal.handle(new Signal(name), s -> {
                onSignal.accept(s.getName());
                received(s.getName());
            });
        }
    }

    private static void received(String name) {
        if (first != null) {
            System.err.println("collie: SIG" + name + " again: stopping now");
            System.err.flush();
            Runtime.getRuntime().halt(exitCode(first));
        }
        first = name;
        System.err.println("collie: SIG" + name + ": finishing the current step, then stopping (send it again to stop"
                + " at once)");
    }

    /** Whether a stop was asked for. */
    static boolean requested() {
        return first != null;
    }

    /** The signal that asked for the stop ("TERM", "INT"), if any. */
    static Optional<String> signal() {
        return Optional.ofNullable(first);
    }

    /** 143 (128 + SIGTERM) or 130 (128 + SIGINT). */
    static int exitCode(String signal) {
        return "INT".equals(signal) ? 130 : 143;
    }

    /**
     * A rank started by {@code collie launch} ends when its launcher does (even one killed with SIGKILL, which
     * cannot forward anything): the launcher's pid is in {@code COLLIE_LAUNCHER_PID}.
     */
    static void exitWithLauncher() {
        String pid = System.getenv("COLLIE_LAUNCHER_PID");
        if (pid == null) {
            return;
        }
        ProcessHandle.of(Long.parseLong(pid)).ifPresentOrElse(h -> h.onExit().thenRun(StopSignals::launcherGone),
                StopSignals::launcherGone);
    }

    private static void launcherGone() {
        System.err.println("collie: the launcher of this rank is gone: stopping");
        System.err.flush();
        Runtime.getRuntime().halt(143);
    }
}
