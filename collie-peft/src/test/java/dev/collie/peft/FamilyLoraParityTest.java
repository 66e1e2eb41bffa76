package dev.collie.peft;

import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.optim.AdamW;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * LoRA on the other families' own module names, fused projections included (Qwen2's q_proj/v_proj, InternLM2's wqkv
 * and wo, ChatGLM's query_key_value and dense), against tools/reference/make_family_lora_fixtures.py: peft itself for
 * Qwen2, peft's LoRA arithmetic on the fused tensors for the remote-code families (checked there against peft on
 * Qwen2 to 1e-6). Adapter files in peft's layout both ways, logits, each step's loss and gradients, AdamW, merge.
 */
@NumericalParity
class FamilyLoraParityTest {
    private static final Path FAMILIES = Fixtures.ROOT.resolve("families");

    private static DecoderForCausalLM base(String family) {
        return DecoderCheckpoint.load(FAMILIES.resolve(family), DataType.FLOAT);
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "internlm2", "chatglm"})
    void adapterSavedByPeftGivesTheReferenceLogitsAndLoss(String family) {
        Path lora = FAMILIES.resolve(family).resolve("lora");
        PeftModel m = Peft.loadAdapter(base(family), lora);
        try (SafeTensors ref = SafeTensors.open(lora.resolve("reference.safetensors"))) {
            INDArray ids = ref.load("input_ids");
            Tape tape = Tape.forTraining((int) ids.size(0), (int) ids.size(1));
            INDArray logits = m.forward(tape, ids);
            Agreement.within(family + " LoRA logits vs the reference", Fixtures.maxAbsDiff(logits, ref.load("logits")),
                    1e-5);
            CausalLmLoss loss = new CausalLmLoss();
            double l = loss.forward(tape, logits, ref.load("labels"));
            Agreement.within(family + " LoRA loss vs the reference", Math.abs(l - ref.load("loss").getDouble(0)), 1e-5);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "internlm2", "chatglm"})
    void threeAdamWStepsOnTheFamilysTargetsMatchTorch(String family) {
        Path lora = FAMILIES.resolve(family).resolve("lora");
        // the targets as the adapter names them (wqkv and wo for InternLM2, query_key_value and dense for ChatGLM)
        PeftModel m = Peft.wrap(base(family), PeftConfig.load(lora));
        Map<String, Parameter> trainable = Peft.trainableNamedParameters(m.module());
        try (SafeTensors ref = SafeTensors.open(lora.resolve("reference.safetensors"))) {
            TreeSet<String> names = new TreeSet<>();
            ref.names().stream().filter(n -> n.startsWith("init.")).forEach(n -> names.add(n.substring(5)));
            assertEquals(names, new TreeSet<>(trainable.keySet()), family + ": trainable parameter names");
            trainable.forEach((n, p) -> p.setData(ref.load("init." + n, p.dtype())));
            PeftParityTest.stepsMatch(m, ref, "", family + " LoRA: ", "the reference");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "internlm2", "chatglm"})
    void mergedFusedWeightsEqualPeftsMergeAndACollieSavedAdapterReloads(String family, @TempDir Path tmp) {
        Path lora = FAMILIES.resolve(family).resolve("lora");
        PeftModel m = Peft.loadAdapter(base(family), lora);
        m.saveAdapter(tmp);
        PeftModel again = Peft.loadAdapter(base(family), tmp);
        m.module().namedParameters().forEach((n, p) -> assertEquals(p.data(), again.module().namedParameters().get(n)
                .data(), n));
        try (SafeTensors ref = SafeTensors.open(lora.resolve("reference.safetensors"))) {
            Map<String, Parameter> merged = m.mergeAndUnload().module().namedParameters();
            double worst = 0;
            int compared = 0;
            for (String n : ref.names()) {
                if (n.startsWith("merged.")) {
                    worst = Math.max(worst, Fixtures.maxAbsDiff(merged.get(n.substring(7)).data(), ref.load(n)));
                    compared++;
                }
            }
            assertEquals(4, compared);
            Agreement.within(family + " merged LoRA weights vs peft's merge", worst, 1e-6);
        }
    }
}
