package dev.collie.core.optim;

import dev.collie.core.CollieException;

/**
 * Learning rate by optimizer step (0-based index of the step about to be taken), with Hugging Face's
 * semantics: linear warm-up from 0 over {@code warmup} steps, then constant, linear decay to 0 at
 * {@code total}, or half-cosine decay to 0 at {@code total}.
 */
@FunctionalInterface
public interface LrSchedule {
    double at(long step);

    static LrSchedule constant(double lr, long warmup) {
        return s -> s < warmup ? lr * (s + 1) / (double) warmup : lr;
    }

    static LrSchedule linear(double lr, long warmup, long total) {
        return s -> s < warmup ? lr * (s + 1) / (double) warmup
                : lr * Math.max(0.0, (total - s) / (double) Math.max(1, total - warmup));
    }

    static LrSchedule cosine(double lr, long warmup, long total) {
        return s -> {
            if (s < warmup) {
                return lr * (s + 1) / (double) warmup;
            }
            double progress = (s - warmup) / (double) Math.max(1, total - warmup);
            return lr * Math.max(0.0, 0.5 * (1 + Math.cos(Math.PI * Math.min(1.0, progress))));
        };
    }

    /** By name: {@code constant}, {@code linear} or {@code cosine}. */
    static LrSchedule named(String name, double lr, long warmup, long total) {
        return switch (name) {
            case "constant" -> constant(lr, warmup);
            case "linear" -> linear(lr, warmup, total);
            case "cosine" -> cosine(lr, warmup, total);
            default -> throw new CollieException("lr_schedule: unknown schedule '" + name
                    + "' (expected constant, linear or cosine)");
        };
    }
}
