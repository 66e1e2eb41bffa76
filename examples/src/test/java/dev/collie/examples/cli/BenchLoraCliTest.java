package dev.collie.examples.cli;

import org.junit.jupiter.api.Test;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static dev.collie.examples.cli.CliTest.assertUserError;
import static dev.collie.examples.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code collie bench} with {@code train}'s LoRA flags trains only the adapter, and its memory line says so. */
class BenchLoraCliTest {
    private static final String[] SHAPE = {"bench", "--hidden", "32", "--layers", "2", "--heads", "4", "--kv-heads",
            "2", "--intermediate", "64", "--vocab", "100", "--batch", "1", "--seq", "16", "--steps", "1", "--warmup",
            "1"};

    private static String[] with(String... more) {
        String[] a = new String[SHAPE.length + more.length];
        System.arraycopy(SHAPE, 0, a, 0, SHAPE.length);
        System.arraycopy(more, 0, a, SHAPE.length, more.length);
        return a;
    }

    @Test
    void loraFlagsFreezeTheBaseAndTheMemoryLineCountsOnlyTheAdapter() {
        CliTest.Result r = run(with("--lora-r", "4", "--lora-alpha", "8", "--lora-targets", "q_proj,v_proj"));
        assertEquals(0, r.code(), r.err());
        // per layer: q 4·32 + 32·4, v 4·32 + 16·4
        assertTrue(r.out().contains("trainable params: 896 ||"), r.out());
        Matcher m = Pattern.compile("parameters ([0-9.]+) MiB \\(([0-9.]+) MiB frozen, ([0-9.]+) MiB trainable\\),"
                + " gradients ([0-9.]+) MiB, optimizer state ([0-9.]+) MiB").matcher(r.out());
        assertTrue(m.find(), r.out());
        assertEquals(896 * 4 / 1048576.0, Double.parseDouble(m.group(4)), 0.05, "gradients of the adapter only");
        assertEquals(2 * 896 * 4 / 1048576.0, Double.parseDouble(m.group(5)), 0.05, "AdamW's two moments of it");
        assertTrue(r.out().lines().reduce((a, b) -> b).orElse("").startsWith("tokens/s: "), r.out());
    }

    @Test
    void peftUnderParallelBenchIsRefusedByName() {
        assertUserError(run(with("--lora-r", "4", "--dp", "2")), "bench times PEFT", "collie train");
    }
}
