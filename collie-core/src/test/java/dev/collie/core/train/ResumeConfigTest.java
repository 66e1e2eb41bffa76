package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Linear;
import dev.collie.core.optim.Sgd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Resuming compares the checkpoint's config with the run's: data settings must match, a new lr is reported. */
class ResumeConfigTest {
    private static final CollieConfig SAVED = CollieConfig.builder().seed(3).trainMicroBatchSize(2).seqLen(16)
            .lr(1e-3).build();

    private static Path checkpoint(Path tmp) {
        Linear model = new Linear(2, 2, false, DataType.FLOAT, 0.02);
        Path dir = tmp.resolve("step_1");
        TrainingCheckpoint.save(dir, model, new Sgd(model.namedParameters()), SAVED, 1, 0);
        return dir;
    }

    @Test
    void changedSeqMicroBatchOrSeedIsRefusedNamingBothValues(@TempDir Path tmp) {
        Path dir = checkpoint(tmp);
        String manifest = dir.resolve("trainer.json").toString();
        assertEquals(List.of(), TrainingCheckpoint.compareConfig(dir, SAVED.toBuilder().maxSteps(100).build()));
        String m = assertThrows(CollieException.class,
                () -> TrainingCheckpoint.compareConfig(dir, SAVED.toBuilder().seqLen(32).build())).getMessage();
        assertEquals(manifest + ": the checkpoint was trained with seq_len = 16, this run has 32; resuming exactly"
                + " needs the same value (the data's order and the rows of each step depend on it)", m);
        m = assertThrows(CollieException.class, () -> TrainingCheckpoint.compareConfig(dir,
                SAVED.toBuilder().trainMicroBatchSize(4).build())).getMessage();
        assertEquals(true, m.contains("train_micro_batch_size = 2, this run has 4"), m);
        m = assertThrows(CollieException.class, () -> TrainingCheckpoint.compareConfig(dir,
                SAVED.toBuilder().seed(4).build())).getMessage();
        assertEquals(true, m.contains("seed = 3, this run has 4"), m);
        // a run that does not say its row length (a library user's) is not compared on it
        assertEquals(List.of(), TrainingCheckpoint.compareConfig(dir, SAVED.toBuilder().seqLen(0).build()));
    }

    @Test
    void changedLearningRateIsWarnedNotRefused(@TempDir Path tmp) {
        Path dir = checkpoint(tmp);
        assertEquals(List.of(dir.resolve("trainer.json") + ": resuming with lr = 0.01; the checkpoint was trained"
                + " with 0.001"), TrainingCheckpoint.compareConfig(dir, SAVED.toBuilder().lr(1e-2).build()));
    }
}
