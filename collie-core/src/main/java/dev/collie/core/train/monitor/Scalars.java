package dev.collie.core.train.monitor;

import java.math.BigDecimal;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * What a {@link Monitor} logs at one point of a run: the values of a {@code group} ({@code "train"} after a step,
 * {@code "eval"} after an evaluation) after {@code step} optimizer steps, at {@code wallTime} (seconds since the
 * epoch). TensorBoard's tag of a value is {@code group/name}: {@code train/loss}, {@code eval/ppl}.
 */
public record Scalars(String group, long step, double wallTime, Map<String, Double> values) {
    /** Keeps the values in their order, unmodifiable. */
    public Scalars {
        Objects.requireNonNull(group, "group");
        values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
    }

    /** The TensorBoard tag of the value {@code name}: {@code group/name}. */
    public String tag(String name) {
        return group + "/" + name;
    }

    /**
     * {@code v} as a CSV field or JSON number, with the digits of Java's shortest round-trip form: an integral value
     * without a fraction ({@code 1024}), a wall time without an exponent ({@code 1733571234.512}), a small value
     * with one ({@code 1.0E-5}), and {@code NaN} or {@code Infinity} as Java spells them.
     */
    static String format(double v) {
        double a = Math.abs(v);
        if (!Double.isFinite(v) || a != 0 && a < 1e-3 || a >= 1e15) {
            return Double.toString(v);
        }
        return v == Math.rint(v) ? Long.toString((long) v) : new BigDecimal(Double.toString(v)).toPlainString();
    }
}
