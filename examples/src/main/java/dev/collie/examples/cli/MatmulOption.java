package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.tensor.Backends;
import dev.collie.core.tensor.MatmulPrecision;
import dev.collie.core.tensor.MatmulPrecisionSetting;
import dev.collie.core.tensor.MatmulProbe;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.function.Supplier;

/** {@code --matmul-precision auto|fp32|bf16}, shared by the commands that train or time a model. */
public final class MatmulOption {
    /** The environment variable that changes the default (the tests set fp32: they compare numbers with torch's). */
    static final String DEFAULT_ENV = "COLLIE_MATMUL_PRECISION";

    @Option(names = "--matmul-precision", paramLabel = "P", defaultValue = "${env:" + DEFAULT_ENV + ":-auto}",
            description = "auto (the default, unless the environment variable " + DEFAULT_ENV + " names another), fp32 or bf16. bf16: matrix products"
                    + " with bf16 inputs and fp32 accumulation and results (oneDNN 3.3), faster only where the CPU has"
                    + " AMX (Intel Xeon), slower on AVX-512 bf16 without it (AMD Zen 4/5); weights, gradients,"
                    + " optimizer stay fp32. auto times the model's own products both ways at start (well under 2 s)"
                    + " and takes bf16 only when it is at least 1.1x as fast")
    String value;

    /**
     * Sets the precision until the returned scope closes (then the previous one is back, for callers that run
     * several commands in one JVM); {@code auto} probes {@code shapes} (asked for only then) and prints the choice
     * and its times. A bad value or a missing oneDNN for bf16 ends in one clear error.
     */
    Scope apply(Supplier<List<MatmulProbe.Shape>> shapes) {
        MatmulPrecision previous = Backends.matmulPrecision();
        MatmulPrecisionSetting setting;
        try {
            setting = MatmulPrecisionSetting.parse(value);
        } catch (IllegalArgumentException e) {
            throw new CollieException("--matmul-precision: " + e.getMessage());
        }
        MatmulProbe.Result r = MatmulProbe.resolve(setting, shapes);     // the shapes' own errors name their flags
        try {
            Backends.setMatmulPrecision(r.precision());
        } catch (IllegalStateException e) {
            throw new CollieException("--matmul-precision: " + e.getMessage());
        }
        if (r.setting() == MatmulPrecisionSetting.AUTO) {
            System.out.println(r.describe());
        }
        return new Scope(r, previous);
    }

    /** The precision a command runs with and how it was chosen; closing it restores the one before. */
    record Scope(MatmulProbe.Result choice, MatmulPrecision previous) implements AutoCloseable {
        MatmulPrecision precision() {
            return choice.precision();
        }

        @Override
        public void close() {
            Backends.setMatmulPrecision(previous);
        }
    }

    /**
     * For the run's header: "fp32 matmuls", "bf16 matmuls (oneDNN 3.3 avx512_core_amx)", each with "auto" where the
     * probe chose it, and a warning where bf16 was asked for on a CPU without AMX (there oneDNN's bf16 products are
     * slower than its fp32 ones: 0.4× on an AMD EPYC Zen 5).
     */
    static String describe(Scope scope) {
        boolean auto = scope.choice().setting() == MatmulPrecisionSetting.AUTO;
        if (scope.precision() != MatmulPrecision.BF16) {
            return "fp32 matmuls" + (auto ? " (auto)" : "");
        }
        String engine = Backends.bf16MatmulEngine();
        return "bf16 matmuls (" + (auto ? "auto, " : "") + engine + ")" + (auto || engine.contains("amx") ? ""
                : "; this CPU has no AMX, where bf16 matmuls run slower than fp32 (0.4x on an AMD EPYC Zen 5;"
                        + " --matmul-precision auto measures)");
    }
}
