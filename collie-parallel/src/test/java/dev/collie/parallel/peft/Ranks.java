package dev.collie.parallel.peft;

import dev.collie.parallel.comm.LocalRanks;

import java.time.Duration;
import java.util.List;

/** Test helper: {@link LocalRanks#run} with this package's time limits. */
final class Ranks {
    private Ranks() {
    }

    static <T> List<T> run(int n, LocalRanks.Body<T> body) {
        return run(n, 60, body);
    }

    static <T> List<T> run(int n, int timeoutSeconds, LocalRanks.Body<T> body) {
        return LocalRanks.run(n, Duration.ofSeconds(30), timeoutSeconds, body);
    }
}
