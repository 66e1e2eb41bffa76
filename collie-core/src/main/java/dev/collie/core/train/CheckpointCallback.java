package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.io.AtomicFiles;
import dev.collie.core.io.DirectoryLock;

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
    private DirectoryLock lock;       // the lead rank's, for the run

    public CheckpointCallback(Path folder, long everyNSteps, int keep) {
        if (everyNSteps < 1) {
            throw new CollieException("checkpoint interval must be >= 1 step, got " + everyNSteps);
        }
        this.folder = folder;
        this.everyNSteps = everyNSteps;
        this.keep = keep;
    }

    /** The lead rank locks the folder for the run: a second run writing it is refused, naming this one. */
    @Override
    public void onTrainBegin(Trainer trainer) {
        if (trainer.isLeadRank() && lock == null) {
            lock = DirectoryLock.acquire(folder);
        }
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

    /** Releases the folder's lock, whether the run ended or failed. */
    @Override
    public void onTrainExit(Trainer trainer) {
        if (lock != null) {
            lock.close();
            lock = null;
        }
    }

    /**
     * Writes {@code step_<n>}; a save that fails (a non-finite weight, a full disk) throws before anything is
     * deleted, so the older checkpoints stay.
     */
    private void save(Trainer trainer, long step) {
        Path dir = folder.resolve("step_" + step);
        if (trainer.isLeadRank()) {
            try {
                AtomicFiles.removeLeftovers(folder);     // of interrupted saves: this run holds the folder
            } catch (IOException e) {
                throw new CollieException(folder + ": cannot remove what an interrupted save left: " + e, e);
            }
        }
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
