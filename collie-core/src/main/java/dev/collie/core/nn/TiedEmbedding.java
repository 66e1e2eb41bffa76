package dev.collie.core.nn;

/**
 * An input embedding that can also serve as the output head (tied word embeddings): the head multiplies
 * hidden rows by the same {@code [vocab, dim]} table. A model asks its current embedding module for the
 * head, so a replaced embedding (a tensor-parallel shard of the vocabulary) brings its matching head.
 */
public interface TiedEmbedding extends Layer {
    /** The output head over this embedding's table; the same object on every call. */
    Layer outputHead();
}
