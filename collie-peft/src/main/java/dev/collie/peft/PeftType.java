package dev.collie.peft;

/** The PEFT methods collie supports, named as Hugging Face peft's {@code peft_type} in {@code adapter_config.json}. */
public enum PeftType {
    /** Low-rank adapters added to linear layers. */
    LORA,
    /** Learned key/value prefixes for every attention layer. */
    PREFIX_TUNING,
    /** Learned virtual-token embeddings put in front of the input. */
    PROMPT_TUNING,
    /** Virtual-token embeddings produced by an MLP prompt encoder. */
    P_TUNING;

    /** Whether the method adds virtual tokens (prompt learning in peft's terms) rather than wrapping layers. */
    public boolean isPromptLearning() {
        return this != LORA;
    }
}
