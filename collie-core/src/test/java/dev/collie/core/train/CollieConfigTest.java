package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.tensor.ActivationDtype;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CollieConfigTest {
    @Test
    void jsonFieldsUseCollieNamesAndOmittedFieldsKeepDefaults(@TempDir Path dir) throws Exception {
        Path f = Files.writeString(dir.resolve("c.json"),
                "{\"train_micro_batch_size\": 4, \"gradient_accumulation_steps\": 2, \"lr\": 3e-4, \"shuffle\": false}");
        CollieConfig c = CollieConfig.load(f);
        assertEquals(4, c.trainMicroBatchSize());
        assertEquals(2, c.gradientAccumulationSteps());
        assertEquals(3e-4, c.lr());
        assertFalse(c.shuffle());
        assertEquals(42, c.seed());
        assertEquals(8, c.rowsPerStep());
    }

    @Test
    void yamlIsReadToo(@TempDir Path dir) throws Exception {
        Path f = Files.writeString(dir.resolve("c.yaml"), "lr_schedule: cosine\nwarmup_steps: 10\ncheckpointing: true\n");
        CollieConfig c = CollieConfig.load(f);
        assertEquals("cosine", c.lrSchedule());
        assertEquals(10, c.warmupSteps());
        assertTrue(c.checkpointing());
    }

    @Test
    void activationDtypeIsReadAndCheckedByName(@TempDir Path dir) throws Exception {
        assertEquals(ActivationDtype.FP32, CollieConfig.defaults().activations());
        CollieConfig c = CollieConfig.load(Files.writeString(dir.resolve("c.yaml"), "activation_dtype: bf16\n"));
        assertEquals(ActivationDtype.BF16, c.activations());
        var e = assertThrows(CollieException.class,
                () -> CollieConfig.builder().activationDtype("fp16").build().validate());
        assertEquals("config: activation_dtype = fp16 must be fp32 or bf16", e.getMessage());
    }

    @Test
    void badValueNamesTheField() {
        var e = assertThrows(CollieException.class, () -> CollieConfig.builder().trainMicroBatchSize(0).build().validate());
        assertEquals("config: train_micro_batch_size = 0 must be positive", e.getMessage());
    }

    @Test
    void unknownFieldNamesFileLineAndField(@TempDir Path dir) throws Exception {
        Path f = Files.writeString(dir.resolve("c.json"), "{\n  \"lr\": 1e-3,\n  \"learning_rate\": 2\n}");
        var e = assertThrows(CollieException.class, () -> CollieConfig.load(f));
        assertTrue(e.getMessage().startsWith(f + ":3:"), e.getMessage());
        assertTrue(e.getMessage().contains("unknown field 'learning_rate'"), e.getMessage());
    }

    @Test
    void malformedJsonNamesTheLine(@TempDir Path dir) throws Exception {
        Path f = Files.writeString(dir.resolve("c.json"), "{\n  \"lr\": ,\n}");
        var e = assertThrows(CollieException.class, () -> CollieConfig.load(f));
        assertTrue(e.getMessage().startsWith(f + ":2:"), e.getMessage());
    }

    @Test
    void wrongTypeIsAnError(@TempDir Path dir) throws Exception {
        Path f = Files.writeString(dir.resolve("c.json"), "{\"train_epochs\": \"many\"}");
        var e = assertThrows(CollieException.class, () -> CollieConfig.load(f));
        assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
    }

    @Test
    void invalidValueInAFileNamesTheField(@TempDir Path dir) throws Exception {
        Path f = Files.writeString(dir.resolve("c.json"), "{\"lr_schedule\": \"step\"}");
        var e = assertThrows(CollieException.class, () -> CollieConfig.load(f));
        assertEquals("config: lr_schedule = step must be one of constant, linear, cosine", e.getMessage());
    }
}
