package dev.collie.parallel.peft;

import java.time.Duration;
import java.util.List;

/** Test helper: {@link dev.collie.parallel.testing.Ranks#local} with this package's time limits. */
final class Ranks {
    private Ranks() {
    }

    static <T> List<T> run(int n, dev.collie.parallel.testing.Ranks.Body<T> body) throws Exception {
        return run(n, 60, body);
    }

    static <T> List<T> run(int n, int timeoutSeconds, dev.collie.parallel.testing.Ranks.Body<T> body) throws Exception {
        return dev.collie.parallel.testing.Ranks.local(n, Duration.ofSeconds(30), timeoutSeconds, body);
    }
}
