package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.optim.Sgd;
import dev.collie.optim.AdamW;
import picocli.CommandLine.Option;

import java.util.Map;

/** Optimizer flags shared by {@code train} and {@code bench}. */
final class OptimizerOptions {
    @Option(names = "--optimizer", defaultValue = "adamw", description = "adamw | sgd") String name;
    @Option(names = "--lr", defaultValue = "1e-3") double lr;
    @Option(names = "--weight-decay", defaultValue = "0.01") double weightDecay;
    @Option(names = "--betas", split = ",", description = "beta1,beta2 (default 0.9,0.999)") double[] betas;
    @Option(names = "--eps", defaultValue = "1e-8") double eps;

    Optimizer create(Map<String, Parameter> params) {
        return switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "adamw" -> {
                double[] b = betas == null ? new double[] {0.9, 0.999} : betas;
                if (b.length != 2) {
                    throw new CollieException("--betas: AdamW takes two values, got " + b.length);
                }
                yield new AdamW(params, b[0], b[1], eps, weightDecay);
            }
            case "sgd" -> new Sgd(params);
            default -> throw new CollieException("--optimizer: unknown optimizer '" + name + "' (available: adamw, sgd)");
        };
    }
}
