package dev.collie.peft;

/**
 * The few numbers of a base model that PEFT needs (and that peft writes into {@code adapter_config.json}):
 * decoder layers, hidden size, attention heads, key/value heads, head size, vocabulary.
 */
public record BaseModelShape(int numLayers, int hidden, int heads, int kvHeads, int headDim, long vocab) {
    /** Width of one layer's keys (or values) for one position: {@code kvHeads · headDim} (peft's prefix token_dim). */
    public int kvWidth() {
        return kvHeads * headDim;
    }
}
