package dev.collie.core.nn;

import dev.collie.core.CollieException;
import dev.collie.core.dist.ParallelStyle;

/**
 * A module that takes part in tensor parallelism on its own terms, so that collie-parallel can split a model that
 * carries modules it does not know (PEFT's LoRA layers, ...) without depending on the module that defines them.
 *
 * <p>Two calls, both made by the tensor-parallel applier:
 * <ul>
 *   <li>{@link #shardForTensorParallel} when the model's plan names this module as {@link ParallelStyle#COLUMN} or
 *       {@link ParallelStyle#ROW} (e.g. a LoRA-wrapped {@code q_proj}): return this rank's replacement, keeping the
 *       parameter names, with every split parameter registered through the context. The applier validates such a
 *       module as it validates a {@link Linear}, by its 2-D {@code weight} parameter {@code [out, in]}, and wraps its
 *       parent in the usual region when the style is COLUMN: the replacement's backward may return a partial input
 *       gradient, as a column-parallel linear does.</li>
 *   <li>{@link #tensorParallelApplied} once for every module of the split model's tree that implements this
 *       interface (the model's root included), after all replacements: a module that acts across the model (prefix
 *       tuning slicing its keys and values by the rank's heads, ...) keeps the context for its forward/backward.</li>
 * </ul>
 */
public interface TensorParallelizable {
    /**
     * This rank's replacement for this module, split as {@code style}.
     *
     * @throws CollieException when this module cannot be split that way (the default: it cannot be split at all)
     */
    default Module shardForTensorParallel(ParallelStyle style, TensorParallelContext ctx) {
        throw new CollieException(getClass().getSimpleName() + " cannot be split " + style
                + " over tensor-parallel ranks");
    }

    /** Tensor parallelism has split the model this module belongs to (default: nothing to do). */
    default void tensorParallelApplied(TensorParallelContext ctx) {
    }
}
