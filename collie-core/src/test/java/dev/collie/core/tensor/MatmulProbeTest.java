package dev.collie.core.tensor;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code auto}: parsing, the decision rule, the cut of large products, and the probe on this machine. */
class MatmulProbeTest {
    /** A supplier that fails the test when asked: no probe may run. */
    private static final Supplier<List<MatmulProbe.Shape>> NEVER = () -> {
        throw new AssertionError("the shapes were asked for: a probe ran");
    };

    @AfterEach
    void fp32Again() {
        Backends.setMatmulPrecision(MatmulPrecision.FP32);
    }

    @Test
    void parsesTheThreeSettingsAndNamesThemForABadOne() {
        assertEquals(MatmulPrecisionSetting.AUTO, MatmulPrecisionSetting.parse("auto"));
        assertEquals(MatmulPrecisionSetting.FP32, MatmulPrecisionSetting.parse(" FP32 "));
        assertEquals(MatmulPrecisionSetting.BF16, MatmulPrecisionSetting.parse("Bf16"));
        assertNull(MatmulPrecisionSetting.AUTO.fixed());
        assertEquals(MatmulPrecision.FP32, MatmulPrecisionSetting.FP32.fixed());
        assertEquals(MatmulPrecision.BF16, MatmulPrecisionSetting.BF16.fixed());
        assertEquals("auto", MatmulPrecisionSetting.AUTO.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MatmulPrecisionSetting.parse("fp16"));
        assertEquals("matmul precision 'fp16': expected auto, fp32 or bf16", e.getMessage());
        // the precision in use has no AUTO
        assertThrows(IllegalArgumentException.class, () -> MatmulPrecision.parse("auto"));
    }

    @Test
    void bf16OnlyWhenAtLeastTheMarginFaster() {
        assertEquals(1.10, MatmulProbe.BF16_MIN_SPEEDUP);
        assertEquals(MatmulPrecision.BF16, MatmulProbe.decide(11.0, 10.0));     // exactly 1.10×
        assertEquals(MatmulPrecision.FP32, MatmulProbe.decide(10.99, 10.0));    // 1.099×
        assertEquals(MatmulPrecision.FP32, MatmulProbe.decide(10.0, 10.0));
        assertEquals(MatmulPrecision.BF16, MatmulProbe.decide(30.0, 10.0));     // AMX
        assertEquals(MatmulPrecision.FP32, MatmulProbe.decide(12.3, 35.1));     // AVX-512 bf16 without AMX
        assertEquals(MatmulPrecision.FP32, MatmulProbe.decide(Double.NaN, 1.0));
        assertEquals(MatmulPrecision.FP32, MatmulProbe.decide(1.0, 0.0));
        assertEquals(MatmulPrecision.FP32, MatmulProbe.decide(Double.POSITIVE_INFINITY, 1.0));
    }

    @Test
    void fixedSettingsAndAutoWithoutOneDnnNeverProbe() {
        MatmulProbe.Result fp32 = MatmulProbe.resolve(MatmulPrecisionSetting.FP32, NEVER);
        assertEquals(MatmulPrecision.FP32, fp32.precision());
        assertFalse(fp32.probed());
        assertEquals("matmul precision fp32", fp32.describe());
        assertEquals(MatmulPrecision.BF16, MatmulProbe.resolve(MatmulPrecisionSetting.BF16, NEVER).precision());

        // what auto does where oneDNN 3.3 is switched off (-Dcollie.onednn3=off, read once per JVM) or missing
        MatmulProbe.Result off = MatmulProbe.auto("oneDNN 3.3 is unavailable (switched off by -Dcollie.onednn3=off)",
                NEVER, Duration.ofSeconds(1));
        assertEquals(MatmulPrecision.FP32, off.precision());
        assertFalse(off.probed());
        assertEquals("matmul precision auto → fp32 (no probe: oneDNN 3.3 is unavailable (switched off by"
                + " -Dcollie.onednn3=off))", off.describe());
    }

    @Test
    void largeProductsAreCutKeepingTheirReductionLength() {
        MatmulProbe.Shape small = new MatmulProbe.Shape(1024, 288, 768);
        assertEquals(small, MatmulProbe.cut(small, 1e9));
        double cap = 1e9;
        // base config's head: 2×512 rows, hidden 768, vocab 32000 (50 GFLOP): fewer columns keep the rows
        MatmulProbe.Shape head = MatmulProbe.cut(new MatmulProbe.Shape(1024, 768, 32000), cap);
        assertEquals(new MatmulProbe.Shape(1024, 768, 576), head);
        assertTrue(head.flops() <= cap, head.toString());
        // few columns already: fewer rows
        assertEquals(new MatmulProbe.Shape(944, 2048, 256), MatmulProbe.cut(new MatmulProbe.Shape(4096, 2048, 256), cap));
        assertEquals(new MatmulProbe.Shape(1264, 768, 512), MatmulProbe.cut(new MatmulProbe.Shape(4096, 768, 32000), cap));
        // never below the floors, even when the cap cannot be met
        assertEquals(new MatmulProbe.Shape(128, 100_000, 512),
                MatmulProbe.cut(new MatmulProbe.Shape(4096, 100_000, 4096), cap));
        // with the probe's own cap; duplicates after the cut are timed once
        List<MatmulProbe.Shape> cut = MatmulProbe.cut(List.of(new MatmulProbe.Shape(4096, 768, 32000),
                new MatmulProbe.Shape(8192, 768, 32000)));
        assertEquals(1, cut.size());
        assertTrue(cut.get(0).flops() <= MatmulProbe.MAX_SHAPE_FLOPS, cut.toString());
        assertThrows(IllegalArgumentException.class, () -> new MatmulProbe.Shape(0, 1, 1));
    }

    /** Not a timing assertion: the choice is one of the two, measured where oneDNN 3.3 runs, and nothing else changes. */
    @Test
    void autoOnThisMachineChoosesFp32OrBf16AndRecordsItsTimes() {
        List<MatmulProbe.Shape> shapes = List.of(new MatmulProbe.Shape(64, 96, 256), new MatmulProbe.Shape(64, 256, 96),
                new MatmulProbe.Shape(64, 96, 1000));
        MatmulProbe.Result r = MatmulProbe.auto(() -> shapes);
        assertTrue(r.precision() == MatmulPrecision.FP32 || r.precision() == MatmulPrecision.BF16);
        assertEquals(MatmulPrecision.FP32, Backends.matmulPrecision(), "the probe restores the precision in use");
        if (Backends.bf16MatmulEngine() == null) {
            // oneDNN 3.3 switched off (COLLIE_ONEDNN3=off) or missing
            assertFalse(r.probed());
            assertEquals(MatmulPrecision.FP32, r.precision());
            assertTrue(r.reason().contains("oneDNN 3.3 is unavailable"), r.reason());
            return;
        }
        assertTrue(r.probed(), r.describe());
        assertEquals(shapes, r.shapes());
        assertTrue(r.fp32Ms() > 0 && Double.isFinite(r.fp32Ms()), r.describe());
        assertTrue(r.bf16Ms() > 0 && Double.isFinite(r.bf16Ms()), r.describe());
        assertTrue(r.wallMs() >= r.warmupMs() + r.fp32Ms() + r.bf16Ms() && r.warmupMs() > 0, r.describe());
        assertEquals(MatmulProbe.decide(r.fp32Ms(), r.bf16Ms()), r.precision());
        assertTrue(r.describe().startsWith("matmul precision auto → " + (r.precision() == MatmulPrecision.BF16
                ? "bf16" : "fp32") + " (probe: fp32 "), r.describe());
        assertTrue(r.passes() >= MatmulProbe.MIN_PASSES && r.passes() <= MatmulProbe.MAX_PASSES, r.describe());
        assertTrue(r.describe().contains("over 3 shapes, best of " + r.passes() + " pass"), r.describe());
    }
}
