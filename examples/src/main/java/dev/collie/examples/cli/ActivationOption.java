package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.tensor.ActivationDtype;
import picocli.CommandLine.Option;

/** {@code --activation-dtype fp32|bf16}, shared by the commands that train. */
public final class ActivationOption {
    @Option(names = "--activation-dtype", paramLabel = "D",
            description = "fp32 (default) or bf16: how a training forward stores the activations its backward reads;"
                    + " bf16 rounds them to nearest even when saved and widens them when read, halving their memory"
                    + " (weights, gradients, optimizer and every op stay fp32)")
    String value;

    /** Whether the option was given. */
    boolean given() {
        return value != null;
    }

    /** The dtype given (fp32 when not); a bad value ends in one clear error naming the option. */
    ActivationDtype dtype() {
        if (value == null) {
            return ActivationDtype.FP32;
        }
        try {
            return ActivationDtype.parse(value);
        } catch (IllegalArgumentException e) {
            throw new CollieException("--activation-dtype: " + e.getMessage());
        }
    }
}
