package dev.collie.core.tensor;

import java.util.Locale;

/**
 * What a user asks for: a {@link MatmulPrecision} or {@link #AUTO}, which {@link MatmulProbe} resolves to one of them
 * at start. The precision in use ({@link Backends#matmulPrecision()}) is always FP32 or BF16; AUTO is never set.
 */
public enum MatmulPrecisionSetting {
    /** Measure the step's own products both ways at start and take bf16 only where it is clearly faster. */
    AUTO(null),
    FP32(MatmulPrecision.FP32),
    BF16(MatmulPrecision.BF16);

    private final MatmulPrecision fixed;

    MatmulPrecisionSetting(MatmulPrecision fixed) {
        this.fixed = fixed;
    }

    /** The precision this setting names; null for {@link #AUTO}. */
    public MatmulPrecision fixed() {
        return fixed;
    }

    /** Parses {@code auto}, {@code fp32} or {@code bf16} (any case, spaces around ignored), naming them otherwise. */
    public static MatmulPrecisionSetting parse(String text) {
        for (MatmulPrecisionSetting s : values()) {
            if (s.name().equalsIgnoreCase(text.trim())) {
                return s;
            }
        }
        throw new IllegalArgumentException("matmul precision '" + text + "': expected auto, fp32 or bf16");
    }

    /** {@code auto}, {@code fp32} or {@code bf16}, as parsed. */
    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
