package dev.collie.core.data;

import java.util.List;

/**
 * A tokenizer's chat format: renders a conversation with the model's chat template and tokenizes it. Implemented
 * in collie-models by the Hugging Face {@code chat_template} of a tokenizer directory; reached through
 * {@link Tokenizer#chat()}.
 */
public interface ChatFormat {
    /**
     * The conversation as the template writes it.
     *
     * @param addGenerationPrompt end with the start of an assistant turn, for the model to write (generation)
     */
    String render(List<ChatMessage> messages, boolean addGenerationPrompt);

    /**
     * The ids of {@link #render}'s text, tokenized without adding special tokens (the template writes them), with
     * the assistant's tokens marked.
     */
    ChatEncoding encode(List<ChatMessage> messages, boolean addGenerationPrompt);
}
