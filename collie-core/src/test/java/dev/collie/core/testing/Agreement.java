package dev.collie.core.testing;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.lang.annotation.Annotation;
import java.lang.reflect.Method;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Comparisons of fp32 results across implementations or layouts that hold on any x86-64 CPU: only
 * well-conditioned quantities, each figure checked against its bound and, when the environment names a file in
 * {@code COLLIE_AGREEMENT_LOG}, appended there as {@code test, what, measured, bound} (the table in
 * docs/design-notes.md, "Comparisons that hold on any CPU", is made from those lines).
 *
 * <p>Why: the kernels that run (AMX, AVX-512, AVX2; OpenBLAS's or oneDNN's) set the summation order, so a gradient
 * element whose true value is near zero carries a CPU-dependent sign and size. Rules that normalise the gradient
 * (AdamW and Adan with eps 1e-8, Lion, Sophia's clipped ratio, AdaLomo's 1-D update) move such an element by up
 * to lr whatever its size, so their fp32 weights after several steps are not a function of the code alone.
 */
public final class Agreement {
    /**
     * AdamW/Adan eps for fp32 runs compared across implementations or layouts. The step is (about) lr/eps-Lipschitz
     * in the gradient, so a summation-order difference δ in a gradient element moves its weight by at most
     * lr·δ/eps per step: 1e-2 · 1e-8 / 1e-3 = 1e-7, where eps 1e-8 lets a |g| ~ 1e-9 element move by anything up
     * to lr. The rule with a small eps is checked on the same gradients instead (the rule tests).
     */
    public static final double ADAM_EPS_ABOVE_NOISE = 1e-3;
    /**
     * AdaLomo's eps1 (added to g²) for such runs: its 1-D parameters' first update is g/√(g² + eps1), a sign for
     * eps1 = 1e-30; with 1e-6 its slope is at most 1/√eps1 = 1e3, times lr·RMS(θ).
     */
    public static final double ADALOMO_EPS1_ABOVE_NOISE = 1e-6;

    private Agreement() {
    }

    /** Asserts {@code measured <= bound} (NaN fails) and records the figure. */
    public static void within(String what, double measured, double bound) {
        record(what, measured, bound);
        assertTrue(measured <= bound, what + ": " + measured + " (bound " + bound + ")");
    }

    /** Largest element-wise difference of two weight sets with the same names (compared in float64). */
    public static double maxAbsDiff(Map<String, INDArray> got, Map<String, INDArray> expected) {
        double worst = 0;
        for (Map.Entry<String, INDArray> e : expected.entrySet()) {
            INDArray g = got.get(e.getKey());
            assertNotNull(g, "no " + e.getKey());
            double d = g.castTo(DataType.DOUBLE).sub(e.getValue().castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
            worst = Math.max(worst, d);      // NaN stays NaN, and fails every bound
        }
        return worst;
    }

    /**
     * For rules that step by a sign (Lion; Sophia where its clipped ratio saturates) or divide by a per-element
     * statistic of the gradient with a small eps (Adan, AdamW with 1e-8), compared end to end in fp32: an element
     * whose gradient or momentum is within summation-order noise of zero may move by up to lr either way, so the
     * elements off by more than {@code bound} are counted, reported and left out, and there may be at most
     * {@code maxShare} of all elements of them; every other element is within {@code bound}. Returns the number
     * left out. (Each such rule is also checked alone on the same gradients, where no element is left out.)
     */
    public static long withinLeavingOut(String what, Map<String, INDArray> got, Map<String, INDArray> expected,
                                             double bound, double maxShare) {
        long total = 0;
        long flipped = 0;
        double worst = 0;
        for (Map.Entry<String, INDArray> e : expected.entrySet()) {
            INDArray g = got.get(e.getKey());
            assertNotNull(g, "no " + e.getKey());
            double[] a = g.castTo(DataType.DOUBLE).reshape(-1).toDoubleVector();
            double[] b = e.getValue().castTo(DataType.DOUBLE).reshape(-1).toDoubleVector();
            for (int i = 0; i < a.length; i++) {
                double d = Math.abs(a[i] - b[i]);
                assertFalse(Double.isNaN(d), what + ": " + e.getKey() + "[" + i + "] is NaN (never left out)");
                if (d > bound) {
                    flipped++;
                } else {
                    worst = Math.max(worst, d);
                }
            }
            total += b.length;
        }
        record(what + " (elements left out)", flipped, Math.floor(maxShare * total));
        within(what, worst, bound);
        assertTrue(flipped <= maxShare * total, what + ": " + flipped + " of " + total
                + " elements differ by more than " + bound + " (at most a share of " + maxShare + " may)");
        return flipped;
    }

    private static synchronized void record(String what, double measured, double bound) {
        String file = System.getenv("COLLIE_AGREEMENT_LOG");
        if (file == null || file.isBlank()) {
            return;
        }
        String line = caller() + "\t" + what.replace('\t', ' ') + "\t" + measured + "\t" + bound + "\n";
        try {
            Files.writeString(Path.of(file), line, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The test method that asked: the nearest frame whose method carries a JUnit test annotation. */
    private static String caller() {
        return StackWalker.getInstance(StackWalker.Option.RETAIN_CLASS_REFERENCE).walk(s -> s
                .filter(Agreement::isTestMethod)
                .map(f -> f.getDeclaringClass().getSimpleName() + "." + f.getMethodName())
                .findFirst().orElse("?"));
    }

    private static boolean isTestMethod(StackWalker.StackFrame f) {
        for (Method m : f.getDeclaringClass().getDeclaredMethods()) {
            if (m.getName().equals(f.getMethodName())) {
                for (Annotation a : m.getAnnotations()) {
                    String name = a.annotationType().getName();
                    if (name.startsWith("org.junit.jupiter") && name.endsWith("Test")) {
                        return true;
                    }
                }
            }
        }
        return false;
    }
}
