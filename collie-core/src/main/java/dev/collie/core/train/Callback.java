package dev.collie.core.train;

import java.nio.file.Path;
import java.util.Map;

/** Hooks into the training loop (CoLLiE's callback events). Every method has an empty default. */
public interface Callback {
    default void onTrainBegin(Trainer trainer) {
    }

    default void onTrainEnd(Trainer trainer) {
    }

    /**
     * After {@link #onTrainEnd}, or when training stops with an error (then instead of it): release what the run held.
     */
    default void onTrainExit(Trainer trainer) {
    }

    default void onEpochBegin(Trainer trainer, int epoch) {
    }

    default void onEpochEnd(Trainer trainer, int epoch) {
    }

    default void onBatchBegin(Trainer trainer, long step) {
    }

    /** After each optimizer step, with its measurements. */
    default void onBatchEnd(Trainer trainer, StepStats stats) {
    }

    default void onEvaluateBegin(Trainer trainer) {
    }

    default void onEvaluateEnd(Trainer trainer, Map<String, Double> results) {
    }

    /**
     * After step {@code step} is complete: its {@link #onBatchEnd}, and the evaluation that follows it when one is
     * due, have reached every callback, and the run has not yet asked whether to stop. A checkpoint written here holds
     * everything the step changed, every callback's state included.
     */
    default void onStepEnd(Trainer trainer, long step) {
    }

    default void onSave(Trainer trainer, Path dir) {
    }

    default void onLoad(Trainer trainer, Path dir) {
    }
}
