package dev.collie.examples.cli;

import dev.collie.core.tensor.Backends;
import dev.collie.core.tensor.MatmulPrecision;
import org.junit.jupiter.api.Test;
import picocli.CommandLine.Option;

import static dev.collie.examples.cli.CliTest.assertUserError;
import static dev.collie.examples.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code --matmul-precision auto|fp32|bf16} on the commands. */
class MatmulOptionTest {
    private static final String[] TINY_BENCH = {"bench", "--hidden", "32", "--layers", "1", "--heads", "2",
        "--intermediate", "64", "--vocab", "100", "--batch", "1", "--seq", "8", "--steps", "1", "--warmup", "0"};

    private static String[] bench(String... more) {
        String[] args = new String[TINY_BENCH.length + more.length];
        System.arraycopy(TINY_BENCH, 0, args, 0, TINY_BENCH.length);
        System.arraycopy(more, 0, args, TINY_BENCH.length, more.length);
        return args;
    }

    @Test
    void autoIsTheDefaultUnlessTheEnvironmentNamesAnother() throws NoSuchFieldException {
        Option o = MatmulOption.class.getDeclaredField("value").getAnnotation(Option.class);
        assertEquals("${env:COLLIE_MATMUL_PRECISION:-auto}", o.defaultValue());
        // the build sets fp32 for the tests (they compare numbers with torch's fp32 runs)
        assertEquals("fp32", System.getenv(MatmulOption.DEFAULT_ENV));
        CliTest.Result r = run(bench());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("; fp32 matmuls;"), r.out());
        assertTrue(!r.out().contains("matmul precision auto"), r.out());
    }

    @Test
    void autoPrintsItsChoiceAndTimesAndRestoresThePrecisionAfter() {
        CliTest.Result r = run(bench("--matmul-precision", "auto"));
        assertEquals(0, r.code(), r.err());
        String line = r.out().lines().filter(l -> l.startsWith("matmul precision auto → ")).findFirst()
                .orElseThrow(() -> new AssertionError("no auto line in:\n" + r.out()));
        if (Backends.bf16MatmulEngine() == null) {
            assertTrue(line.startsWith("matmul precision auto → fp32 (no probe: oneDNN 3.3 is unavailable"), line);
        } else {
            assertTrue(line.matches("matmul precision auto → (fp32|bf16) \\(probe: fp32 [0-9.]+ ms, bf16 [0-9.]+ ms"
                    + " over 4 shapes, best of [3-7] passes, in [0-9.]+ s with [0-9.]+ s of warm-up; bf16 needs 1\\.10x fp32's speed\\)"), line);
        }
        boolean bf16 = line.startsWith("matmul precision auto → bf16");
        assertTrue(r.out().contains(bf16 ? "; bf16 matmuls (auto, oneDNN 3.3" : "; fp32 matmuls (auto);"), r.out());
        assertEquals(MatmulPrecision.FP32, Backends.matmulPrecision());
    }

    @Test
    void aBadValueNamesTheThreeAccepted() {
        assertUserError(run(bench("--matmul-precision", "fp8")), "--matmul-precision: matmul precision 'fp8':"
                + " expected auto, fp32 or bf16");
        assertUserError(run("bench-generate", "--matmul-precision", "half"), "expected auto, fp32 or bf16");
    }
}
