package dev.collie.core.data;

import java.util.Objects;

/**
 * One message of a conversation: who speaks and what. The role is usually {@code system}, {@code user} or
 * {@code assistant}, but any role is kept as it is; the chat template decides what it means (Qwen2.5 knows
 * {@code tool}, ChatGLM3 writes any role as {@code <|role|>}).
 */
public record ChatMessage(String role, String content) {
    public ChatMessage {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(content, "content");
    }

    /** A {@code system} message. */
    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    /** A {@code user} message. */
    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    /** An {@code assistant} message. */
    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }
}
