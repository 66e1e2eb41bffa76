package dev.collie.core.tensor;

/**
 * How a training forward stores the activations its backward reads ({@link dev.collie.core.nn.Tape#stash}):
 * compute is fp32 either way (weights, gradients, the optimizer, every op's inputs and outputs).
 */
public enum ActivationDtype {
    /** As computed: the default, and what every parity test runs. */
    FP32,
    /**
     * Large float32 activations rounded to bfloat16 (nearest, ties to even: 8 significant bits, relative error
     * ≤ 2⁻⁸) when saved and widened back to float32 when backward reads them: half the bytes. float64 arrays and
     * small ones (per-row statistics, masks, ids) are kept as they are.
     */
    BF16;

    /** Parses {@code fp32} or {@code bf16} (any case), naming the accepted values otherwise. */
    public static ActivationDtype parse(String text) {
        for (ActivationDtype d : values()) {
            if (d.name().equalsIgnoreCase(text.trim())) {
                return d;
            }
        }
        throw new IllegalArgumentException("activation dtype '" + text + "': expected fp32 or bf16");
    }

    /** The name a config file and the command line use: {@code fp32} or {@code bf16}. */
    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
