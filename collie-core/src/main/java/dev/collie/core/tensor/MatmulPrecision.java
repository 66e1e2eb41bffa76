package dev.collie.core.tensor;

/**
 * How fp32 matrix products are computed (the counterpart of PyTorch's {@code float32_matmul_precision}).
 * Set with {@link Backends#setMatmulPrecision}; everything else (element-wise math, reductions, the
 * optimizer, the stored weights) stays fp32 either way. These are the precisions in use; a setting that may be
 * {@code auto} is a {@link MatmulPrecisionSetting}, which {@link MatmulProbe} resolves to one of these.
 */
public enum MatmulPrecision {
    /** fp32 products (ND4J's oneDNN GEMM): the default, and what every parity test runs. */
    FP32,
    /**
     * Inputs rounded to bfloat16 inside the kernel, fp32 accumulation and fp32 results (oneDNN 3.3's
     * {@code fpmath_mode bf16}; AMX where the CPU has it). Relative error of a product ~4e-3 of its
     * largest terms instead of ~1e-7: mixed-precision training with fp32 master weights. Rank-2 products
     * only (the projections and the output head); batched attention products stay fp32. Faster only where the CPU
     * has AMX (Intel Xeon 4th generation on); on AVX-512 bf16 without AMX (AMD Zen 4/5) ~3× slower than FP32.
     */
    BF16;

    /** Parses {@code fp32} or {@code bf16} (any case), naming the accepted values otherwise. */
    public static MatmulPrecision parse(String text) {
        for (MatmulPrecision p : values()) {
            if (p.name().equalsIgnoreCase(text.trim())) {
                return p;
            }
        }
        throw new IllegalArgumentException("matmul precision '" + text + "': expected fp32 or bf16");
    }
}
