package dev.collie.core.data;

/**
 * A conversation rendered with a chat template and tokenized: the token ids and, id by id, whether the assistant
 * wrote it (its message's tokens and the end-of-turn token the template puts after them).
 *
 * <p>The arrays are shared, not copied; treat them as read-only.
 */
public record ChatEncoding(int[] ids, boolean[] assistantMask) {
    public ChatEncoding {
        if (ids == null || assistantMask == null) {
            throw new IllegalArgumentException("ids and assistantMask must not be null");
        }
        if (ids.length != assistantMask.length) {
            throw new IllegalArgumentException(
                    "ids and assistantMask differ in length: " + ids.length + " vs " + assistantMask.length);
        }
    }

    /** Labels that train on the assistant's tokens only: the id there, {@link Sample#IGNORE_INDEX} elsewhere. */
    public int[] labels() {
        int[] labels = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            labels[i] = assistantMask[i] ? ids[i] : Sample.IGNORE_INDEX;
        }
        return labels;
    }
}
