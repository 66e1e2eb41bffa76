package dev.collie.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.data.Batch;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.GradCheck;
import dev.collie.core.nn.KvCache;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.train.ActivationCheckpointing;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.StepRunner;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderForCausalLM;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Wrapping the tiny LLaMA: gradients, names, freezing, merging, files, KV-cache decoding, worker threads. */
class PeftModelTest {
    private static final INDArray IDS = Nd4j.createFromArray(new long[][] {{5, 17, 3, 88, 41, 9}, {60, 2, 71, 33, 14, 50}});

    @BeforeEach
    void seed() {
        Nd4j.getRandom().setSeed(17);
    }

    /** Random adapter weights that matter (LoRA's B starts at zero). */
    private static void perturb(PeftModel m) {
        for (Parameter p : Peft.trainableNamedParameters(m.module()).values()) {
            p.data().addi(Nd4j.randn(p.dtype(), p.shape()).muli(0.2));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "prefix", "prefix-projection", "prompt", "p-tuning"})
    void adapterGradientsMatchFiniteDifferences(String method) {
        PeftModel m = Peft.wrap(Fixtures.tiny(DataType.DOUBLE), Fixtures.config(method));
        perturb(m);
        Map<String, Parameter> trainable = new TreeMap<>(Peft.trainableNamedParameters(m.module()));
        if (method.equals("lora")) {   // 28 adapter matrices: three modules (attention and MLP, both layers) suffice
            trainable.keySet().removeIf(n -> !n.matches("model\\.layers\\.(0\\.self_attn\\.v|1\\.self_attn\\.q|1\\.mlp\\.down)_proj.*"));
            assertEquals(6, trainable.size());
        }
        GradCheck.check(t -> m.forward(t, IDS), (t, dy) -> {
            m.backward(t, dy);
            return null;
        }, trainable, IDS, training -> training ? Tape.forTraining(2, 6) : Tape.forInference(2, 6), 41);
    }

    @Test
    void loraKeepsHuggingFaceNamesAndFreezesTheBase() {
        DecoderForCausalLM base = Fixtures.tiny(DataType.FLOAT);
        Set<String> baseNames = new TreeSet<>(base.namedParameters().keySet());
        PeftModel m = Peft.wrap(base, LoraConfig.builder().r(2).targets("q_proj", "v_proj").build());
        Map<String, Parameter> names = m.namedParameters();
        assertTrue(names.keySet().containsAll(baseNames), "base names changed");
        assertTrue(names.containsKey("model.layers.0.self_attn.q_proj.lora_A.weight"));
        assertTrue(names.containsKey("model.layers.1.self_attn.v_proj.lora_B.weight"));
        assertEquals(baseNames.size() + 8, names.size());
        assertEquals(8, Peft.trainableNamedParameters(m.module()).size());
        assertTrue(Peft.trainableNamedParameters(m.module()).keySet().stream().allMatch(n -> n.contains(".lora_")));
        // the base model's own tree shows the adapter too (it is wrapped in place)
        assertTrue(base.namedParameters().containsKey("model.layers.0.self_attn.q_proj.lora_A.weight"));
    }

    @Test
    void regexTargetsMatchWholeNamesAndOnlyLinearLayersAreWrapped() {
        PeftModel m = Peft.wrap(Fixtures.tiny(DataType.FLOAT), LoraConfig.builder().r(2).targetRegex(".*mlp.*").build());
        assertEquals(List.of("model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj",
                "model.layers.1.mlp.gate_proj", "model.layers.1.mlp.up_proj", "model.layers.1.mlp.down_proj"),
                List.copyOf(m.loraModules().keySet()));
        PeftModel one = Peft.wrap(Fixtures.tiny(DataType.FLOAT),
                LoraConfig.builder().r(2).targetRegex("model\\.layers\\.1\\.self_attn\\.(q|k)_proj").build());
        assertEquals(Set.of("model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.k_proj"), one.loraModules().keySet());
    }

    @Test
    void unusableTargetsAreRefused() {
        assertThrows(CollieException.class, () -> Peft.wrap(Fixtures.tiny(DataType.FLOAT),
                LoraConfig.builder().targets("lm_head").build()));
        assertThrows(CollieException.class, () -> Peft.wrap(Fixtures.tiny(DataType.FLOAT),
                LoraConfig.builder().targets("no_such_proj").build()));
    }

    @Test
    void mergedExportScoresTheSameAsBasePlusAdapter(@TempDir Path tmp) {
        PeftModel m = Peft.loadAdapter(Fixtures.tiny(DataType.FLOAT), Fixtures.PEFT.resolve("lora"));
        Tape tape = Tape.forInference(2, 6);
        INDArray adapted = m.forward(tape, IDS);
        double loss = new CausalLmLoss().forward(tape, adapted.dup(), IDS);
        DecoderForCausalLM merged = (DecoderForCausalLM) m.mergeAndUnload();
        DecoderCheckpoint.save(merged, tmp);
        DecoderForCausalLM reloaded = DecoderCheckpoint.load(tmp, DataType.FLOAT);
        assertEquals(Fixtures.tiny(DataType.FLOAT).namedParameters().keySet(), reloaded.namedParameters().keySet());
        Tape t2 = Tape.forInference(2, 6);
        INDArray exported = reloaded.forward(t2, IDS);
        double diff = Fixtures.maxAbsDiff(exported, adapted);
        assertTrue(diff < 1e-5, "merged export differs from base + adapter by " + diff);
        assertEquals(loss, new CausalLmLoss().forward(t2, exported, IDS), 1e-5);
    }

    @Test
    void mergeThenUnmergeRestoresEveryBaseWeight() {
        DecoderForCausalLM base = Fixtures.tiny(DataType.FLOAT);
        Map<String, INDArray> before = new TreeMap<>();
        base.namedParameters().forEach((n, p) -> before.put(n, p.data().dup()));
        PeftModel m = Peft.loadAdapter(base, Fixtures.PEFT.resolve("lora"));
        INDArray adapted = m.forward(Tape.forInference(2, 6), IDS);
        m.merge();
        assertTrue(Fixtures.maxAbsDiff(m.forward(Tape.forInference(2, 6), IDS), adapted) < 1e-5);
        m.unmerge();
        double worst = 0;
        for (Map.Entry<String, INDArray> e : before.entrySet()) {
            worst = Math.max(worst, Fixtures.maxAbsDiff(base.namedParameters().get(e.getKey()).data(), e.getValue()));
        }
        assertTrue(worst < 1e-6, "base weights moved by " + worst);
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "prefix", "prefix-projection", "prompt", "p-tuning"})
    void savedAdapterHasPeftsFieldsAndKeysAndLoadsBack(String method, @TempDir Path tmp) throws IOException {
        PeftModel m = Peft.wrap(Fixtures.tiny(DataType.FLOAT), Fixtures.config(method).withBaseModel("tiny-llama"));
        perturb(m);
        m.saveAdapter(tmp);
        ObjectMapper json = new ObjectMapper();
        ObjectNode ours = (ObjectNode) json.readTree(tmp.resolve("adapter_config.json").toFile());
        JsonNode peft = json.readTree(Fixtures.PEFT.resolve(method).resolve("adapter_config.json").toFile());
        assertEquals(peft, ours, method + ": adapter_config.json differs from peft's");
        try (SafeTensors a = SafeTensors.open(tmp.resolve("adapter_model.safetensors"));
             SafeTensors b = SafeTensors.open(Fixtures.PEFT.resolve(method).resolve("adapter_model.safetensors"))) {
            assertEquals(b.names(), a.names());
            for (String n : a.names()) {
                assertTrue(Arrays.equals(b.info(n).shape(), a.info(n).shape()), n);
            }
            assertEquals(Map.of("format", "pt"), a.metadata());
        }
        PeftModel back = Peft.loadAdapter(Fixtures.tiny(DataType.FLOAT), tmp);
        double diff = Fixtures.maxAbsDiff(back.forward(Tape.forInference(2, 6), IDS), m.forward(Tape.forInference(2, 6), IDS));
        assertTrue(diff < 1e-6, method + ": reloaded adapter changes the logits by " + diff);
    }

    @Test
    void anAdapterForAnotherModelIsRefused(@TempDir Path tmp) throws IOException {
        PeftModel m = Peft.wrap(Fixtures.tiny(DataType.FLOAT), PrefixTuningConfig.of(2));
        m.saveAdapter(tmp);
        Path cfg = tmp.resolve("adapter_config.json");
        String text = Files.readString(cfg).replace("\"num_layers\": 2", "\"num_layers\": 3");
        Files.writeString(cfg, text);
        assertThrows(CollieException.class, () -> Peft.loadAdapter(Fixtures.tiny(DataType.FLOAT), tmp));
    }

    /** Logits of the last real position: full forward against prefill + one-token steps with a KV cache. */
    @ParameterizedTest
    @ValueSource(strings = {"lora", "prefix", "prompt", "p-tuning"})
    void incrementalDecodingWithAKvCacheMatchesTheFullForward(String method) {
        PeftModel m = Peft.wrap(Fixtures.tiny(DataType.DOUBLE), Fixtures.config(method));
        perturb(m);
        INDArray row = IDS.getRow(0).reshape(1, 6);
        INDArray full = m.forward(Tape.forInference(1, 6), row);
        KvCache cache = new KvCache();
        INDArray prefill = m.forward(Tape.forInference(1, 4).setKvCache(cache), row.get(
                NDArrayIndex.all(), NDArrayIndex.interval(0, 4)));
        cache.advance(4);
        int v = m.virtualTokens();
        assertTrue(prefill.getRow(v + 3).equalsWithEps(full.getRow(v + 3), 1e-10), "prefill");
        INDArray last = null;
        for (int i = 4; i < 6; i++) {
            last = m.forward(Tape.forInference(1, 1).setKvCache(cache), row.get(
                    NDArrayIndex.all(), NDArrayIndex.interval(i, i + 1)));
            cache.advance(1);
        }
        assertTrue(last.getRow(0).equalsWithEps(full.getRow(v + 5), 1e-10), method + ": cached decoding differs");
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "prefix"})
    void workerThreadsGiveTheSameAdapterGradientAsOne(String method) {
        Map<String, INDArray> grads = new TreeMap<>();
        for (int workers : new int[] {1, 2}) {
            Nd4j.getRandom().setSeed(5);
            PeftModel m = Peft.wrap(Fixtures.tiny(DataType.DOUBLE), Fixtures.config(method));
            perturb(m);
            try (StepRunner runner = new StepRunner(m, workers)) {
                runner.forwardBackward(List.of(new Batch(IDS, IDS, Nd4j.onesLike(IDS))));
            }
            Peft.trainableNamedParameters(m.module()).forEach((n, p) -> {
                INDArray g = p.grad().dup();
                INDArray first = grads.putIfAbsent(n, g);
                if (first != null) {
                    assertTrue(first.equalsWithEps(g, 1e-10), method + " " + n + ": 2 workers differ from 1");
                }
            });
        }
        assertTrue(!grads.isEmpty());
    }

    @Test
    void prefixTuningWorksWithGradientCheckpointing() {
        Map<String, INDArray> grads = new TreeMap<>();
        for (boolean ckpt : new boolean[] {false, true}) {
            Nd4j.getRandom().setSeed(6);
            DecoderForCausalLM base = Fixtures.tiny(DataType.DOUBLE);
            ActivationCheckpointing.apply(base, ckpt);
            PeftModel m = Peft.wrap(base, PrefixTuningConfig.withProjection(2, 8));
            perturb(m);
            Tape tape = Tape.forTraining(2, 6);
            CausalLmLoss loss = new CausalLmLoss();
            loss.forward(tape, m.forward(tape, IDS), IDS);
            m.backward(tape, loss.backward(tape, 1.0));
            Peft.trainableNamedParameters(m.module()).forEach((n, p) -> {
                INDArray first = grads.putIfAbsent(n, p.grad().dup());
                if (first != null) {
                    assertTrue(first.equalsWithEps(p.grad(), 1e-10), n + " differs with checkpointing");
                }
            });
        }
    }

    @Test
    void promptLogitsKeepVirtualPositionsAndLabelsArePadded() {
        PeftModel m = Peft.wrap(Fixtures.tiny(DataType.FLOAT), PromptTuningConfig.of(3));
        assertEquals(3, m.virtualTokens());
        assertEquals(2 * 9, m.forward(Tape.forInference(2, 6), IDS).size(0));
        INDArray labels = m.labelsFor(IDS);
        assertEquals(List.of(2L, 9L), List.of(labels.size(0), labels.size(1)));
        assertEquals(CausalLmLoss.IGNORE_INDEX, labels.getLong(1, 2));
        assertEquals(IDS.getLong(1, 0), labels.getLong(1, 3));
        assertEquals(0, Peft.wrap(Fixtures.tiny(DataType.FLOAT), PrefixTuningConfig.of(3)).virtualTokens());
    }

    @Test
    void textInitialisationCopiesTheWordEmbeddingsOfTheText() {
        DecoderForCausalLM base = Fixtures.tiny(DataType.FLOAT);
        PeftModel m = Peft.wrap(base, PromptTuningConfig.fromText(5, "a b", List.of(7, 11), null));
        INDArray table = m.promptEncoder().tableParameter().data();
        INDArray emb = base.namedParameters().get("model.embed_tokens.weight").data();
        long[] expect = {7, 11, 7, 11, 7};
        for (int i = 0; i < 5; i++) {
            assertEquals(emb.getRow(expect[i]), table.getRow(i));
        }
    }

    @Test
    void parameterReportIsPeftsLine() {
        LanguageModel m = Peft.wrap(Fixtures.tiny(DataType.FLOAT), PrefixTuningConfig.of(3));
        assertEquals("trainable params: 192 || all params: 28,000 || trainable%: 0.6857",
                Peft.parameterReport(m.module()));
    }
}
