package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.tensor.Backends;
import dev.collie.core.tensor.MatmulPrecision;
import picocli.CommandLine.Option;

/** {@code --matmul-precision fp32|bf16}, shared by the commands that train. */
public final class MatmulOption {
    @Option(names = "--matmul-precision", paramLabel = "P", defaultValue = "fp32",
            description = "fp32 (default) or bf16: matrix products with bf16 inputs and fp32 accumulation and"
                    + " results (oneDNN 3.3, AMX where the CPU has it); weights, gradients, optimizer stay fp32")
    String value;

    /**
     * Sets the precision until the returned scope closes (then the previous one is back, for callers that run
     * several commands in one JVM); a bad value or a missing oneDNN ends in one clear error.
     */
    Scope apply() {
        MatmulPrecision previous = Backends.matmulPrecision();
        MatmulPrecision p;
        try {
            p = MatmulPrecision.parse(value);
            Backends.setMatmulPrecision(p);
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new CollieException("--matmul-precision: " + e.getMessage());
        }
        return new Scope(p, previous);
    }

    /** The precision a command runs with; closing it restores the one before. */
    record Scope(MatmulPrecision precision, MatmulPrecision previous) implements AutoCloseable {
        @Override
        public void close() {
            Backends.setMatmulPrecision(previous);
        }
    }

    /**
     * For the run's header: "fp32 matmuls" or "bf16 matmuls (oneDNN 3.3 avx512_core_amx)", with a warning where the
     * CPU has no AMX (there oneDNN's bf16 products are slower than its fp32 ones: 0.4× on an AMD EPYC Zen 5).
     */
    static String describe(MatmulPrecision p) {
        if (p != MatmulPrecision.BF16) {
            return "fp32 matmuls";
        }
        String engine = Backends.bf16MatmulEngine();
        return "bf16 matmuls (" + engine + ")" + (engine.contains("amx") ? ""
                : "; this CPU has no AMX, where bf16 matmuls run slower than fp32 (0.4x on an AMD EPYC Zen 5)");
    }
}
