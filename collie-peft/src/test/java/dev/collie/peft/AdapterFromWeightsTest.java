package dev.collie.peft;

import dev.collie.core.CollieException;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Tape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Saving an adapter from a map of full weights by parameter name (what a parallel run gathers on its lead rank)
 * writes what {@link PeftModel#saveAdapter(Path)} writes, for every method (MLP encoders' outputs included); and the
 * PEFT model's tree stays the base model's where tensor parallelism replaces top-level children.
 */
class AdapterFromWeightsTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"lora", "prefix", "prefix-projection", "prompt", "p-tuning"})
    void savingFromGatheredWeightsWritesWhatTheModelWrites(String method) throws Exception {
        PeftModel m = Peft.wrap(Fixtures.tiny(DataType.FLOAT), Fixtures.config(method));
        Peft.trainableNamedParameters(m).values().forEach(p -> p.data().addi(Nd4j.rand(p.dtype(), p.shape()).muli(0.1)));
        m.saveAdapter(tmp.resolve("direct"));
        Map<String, INDArray> full = new HashMap<>();
        m.namedParameters().forEach((n, p) -> full.put(n, p.data().dup()));
        m.saveAdapter(tmp.resolve("gathered"), full);
        assertEquals(Files.readString(tmp.resolve("direct/adapter_config.json")),
                Files.readString(tmp.resolve("gathered/adapter_config.json")));
        try (SafeTensors a = SafeTensors.open(tmp.resolve("direct/adapter_model.safetensors"));
             SafeTensors b = SafeTensors.open(tmp.resolve("gathered/adapter_model.safetensors"))) {
            assertEquals(a.names(), b.names());
            for (String n : a.names()) {
                assertEquals(0.0, Fixtures.maxAbsDiff(a.load(n, DataType.FLOAT), b.load(n, DataType.FLOAT)), n);
            }
        }
    }

    @Test
    void savingFromWeightsNamesWhatIsMissingOrMisshapen() {
        PeftModel m = Peft.wrap(Fixtures.tiny(DataType.FLOAT), Fixtures.config("lora"));
        Map<String, INDArray> full = new HashMap<>();
        m.namedParameters().forEach((n, p) -> full.put(n, p.data()));
        String a = "model.layers.0.self_attn.q_proj.lora_A.weight";
        INDArray shard = full.get(a).get(NDArrayIndex.all(),
                NDArrayIndex.interval(0, 16));
        full.put(a, shard);
        CollieException e = assertThrows(CollieException.class, () -> m.saveAdapter(tmp.resolve("x"), full));
        assertTrue(e.getMessage().contains(a) && e.getMessage().contains("[4, 32]"), e.getMessage());
        full.remove(a);
        e = assertThrows(CollieException.class, () -> m.saveAdapter(tmp.resolve("x"), full));
        assertTrue(e.getMessage().contains("no " + a), e.getMessage());
    }

    @Test
    void loraSharesTheBaseTreeAndPromptMethodsKeepItInStep() {
        var base = Fixtures.tiny(DataType.FLOAT);
        PeftModel lora = Peft.wrap(base, Fixtures.config("lora"));
        Module head = new Linear(32, 96, false, DataType.FLOAT, 0.02);
        lora.replaceModule("lm_head", head);
        assertSame(head, base.children().get("lm_head"), "a top-level child replaced through the LoRA model");

        var base2 = Fixtures.tiny(DataType.FLOAT);
        PeftModel prompt = Peft.wrap(base2, Fixtures.config("prompt"));
        Module head2 = new Linear(32, 96, false, DataType.FLOAT, 0.02);
        prompt.replaceModule("lm_head", head2);
        prompt.forward(Tape.forInference(1, 3), Nd4j.createFromArray(new long[][] {{1, 2, 3}}));
        assertSame(head2, base2.children().get("lm_head"), "the base model runs the replaced head");
        assertTrue(!base2.children().containsKey("prompt_encoder"), "the prompt encoder stays out of the base model");
    }
}
