package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.io.AtomicFiles;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Saves a training checkpoint every N steps into {@code folder/step_<n>} (CoLLiE's CheckpointCallback with
 * {@code every_n_batches}), keeping the newest {@code keep} of them (0 keeps all), and one at the end.
 */
public final class CheckpointCallback implements Callback {
    private final Path folder;
    private final long everyNSteps;
    private final int keep;
    private final Deque<Path> written = new ArrayDeque<>();

    public CheckpointCallback(Path folder, long everyNSteps, int keep) {
        if (everyNSteps < 1) {
            throw new CollieException("checkpoint interval must be >= 1 step, got " + everyNSteps);
        }
        this.folder = folder;
        this.everyNSteps = everyNSteps;
        this.keep = keep;
    }

    @Override
    public void onBatchEnd(Trainer trainer, StepStats stats) {
        if (stats.step() % everyNSteps == 0) {
            save(trainer, stats.step());
        }
    }

    @Override
    public void onTrainEnd(Trainer trainer) {
        if (trainer.globalStep() % everyNSteps != 0) {
            save(trainer, trainer.globalStep());
        }
    }

    private void save(Trainer trainer, long step) {
        Path dir = folder.resolve("step_" + step);
        trainer.save(dir);
        written.addLast(dir);
        while (keep > 0 && written.size() > keep) {
            Path old = written.removeFirst();
            if (trainer.isLeadRank()) {      // one replica removes what one replica moved into place
                delete(old);
            }
        }
    }

    private static void delete(Path dir) {
        try {
            AtomicFiles.deleteTree(dir);
        } catch (IOException e) {
            throw new CollieException(dir + ": cannot delete an old checkpoint: " + e.getMessage(), e);
        }
    }
}
