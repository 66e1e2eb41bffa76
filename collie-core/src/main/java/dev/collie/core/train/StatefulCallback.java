package dev.collie.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A callback whose state a resumed run needs to behave as the uninterrupted one (CoLLiE's
 * {@code on_save_checkpoint} / {@code on_load_checkpoint}): the best checkpoints kept so far, the best value, the
 * evaluations without improvement. {@link Trainer#save} writes every such callback's state into the checkpoint's
 * manifest ({@code trainer.json}, under {@code callbacks}, keyed by the class's simple name, {@code #2} and on for a
 * second one of a class) and {@link Trainer#resume} hands it back. Every rank keeps the same state.
 */
public interface StatefulCallback extends Callback {
    /** The state as it stands now, as JSON; numbers in it must be finite (a checkpoint refuses others). */
    ObjectNode saveState();

    /** Takes back a state {@link #saveState()} returned (when resuming, before {@link #onTrainBegin}). */
    void loadState(JsonNode state);
}
