package dev.collie.core.dist;

/**
 * How tensor parallelism may split a module, declared by the model as data (its TP plan) and applied
 * from outside by collie-parallel, so model code has no parallelism branches.
 */
public enum ParallelStyle {
    /** Output features split across ranks (Megatron column-parallel linear). */
    COLUMN,
    /** Input features split across ranks, outputs summed (Megatron row-parallel linear). */
    ROW,
    /** Vocabulary rows split across ranks (vocab-parallel embedding or output head). */
    VOCAB,
    /** Kept whole on every rank. */
    REPLICATE
}
