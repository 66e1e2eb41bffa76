package dev.collie.parallel.dp;

import dev.collie.core.nn.Parameter;

import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * What one data-parallel rank holds for the trainable parameters a gradient sync manages, in bytes: their
 * values (under ZeRO-3 only the owned ones between uses), their gradient buffers (under ZeRO-2/3 only the
 * owned ones between steps) and the sync's own communication buffers. Optimizer state is the optimizer's
 * ({@code Optimizer.stateBytes()}).
 */
public record RankMemory(long parameterBytes, long gradientBytes, long bufferBytes) {
    /** Everything together. */
    public long total() {
        return parameterBytes + gradientBytes + bufferBytes;
    }

    /** Values and gradient buffers of {@code params} (each distinct parameter once) plus {@code bufferBytes}. */
    public static RankMemory of(Collection<Parameter> params, long bufferBytes) {
        Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        long data = 0;
        long grads = 0;
        for (Parameter p : params) {
            if (seen.add(p)) {
                data += p.dataBytes();
                grads += p.gradientBufferBytes();
            }
        }
        return new RankMemory(data, grads, bufferBytes);
    }

    @Override
    public String toString() {
        return "parameters " + parameterBytes + " B, gradients " + gradientBytes + " B, buffers " + bufferBytes
                + " B, total " + total() + " B";
    }
}
