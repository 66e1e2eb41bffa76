package dev.collie.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.optim.AdamW;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Parity with Hugging Face peft 0.21 (transformers 5.18, PyTorch) on the tiny LLaMA: adapters saved by peft give
 * peft's logits, three AdamW steps on the adapter give peft's losses and weights, and the trainable-parameter
 * counts are peft's. Fixtures: tools/reference/make_peft_fixtures.py.
 */
class PeftParityTest {
    private static SafeTensors ref;

    @BeforeAll
    static void open() {
        ref = SafeTensors.open(Fixtures.PEFT.resolve("reference.safetensors"));
    }

    @AfterAll
    static void close() {
        ref.close();
    }

    private static INDArray logits(PeftModel m) {
        INDArray ids = ref.load("input_ids");
        return m.forward(Tape.forInference(2, 12), ids);
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "prefix", "prefix-projection", "prompt", "p-tuning"})
    void adapterSavedByPeftGivesPeftLogits(String method) {
        PeftModel m = Peft.loadAdapter(Fixtures.tiny(DataType.FLOAT), Fixtures.PEFT.resolve(method));
        INDArray expect = ref.load(method + ".logits");
        INDArray got = logits(m);
        assertEquals(expect.length(), got.length(), "logits shape (virtual positions kept as peft keeps them)");
        double diff = Fixtures.maxAbsDiff(got, expect);
        assertTrue(diff < 1e-5, method + ": logits differ from peft's by " + diff);
    }

    /** A fresh wrap with peft's initial adapter weights (MLP encoders included). */
    private static PeftModel freshWithPeftInit(String method) {
        PeftModel m = Peft.wrap(Fixtures.tiny(DataType.FLOAT), Fixtures.config(method));
        Map<String, Parameter> trainable = Peft.trainableNamedParameters(m.module());
        TreeSet<String> expectNames = new TreeSet<>();
        for (String n : ref.names()) {
            if (n.startsWith(method + ".init.")) {
                expectNames.add(n.substring((method + ".init.").length()));
            }
        }
        assertEquals(expectNames, new TreeSet<>(trainable.keySet()), method + ": trainable parameter names");
        trainable.forEach((n, p) -> p.setData(ref.load(method + ".init." + n, p.dtype())));
        return m;
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "prefix", "prefix-projection", "prompt", "p-tuning"})
    void freshAdapterWithPeftWeightsGivesPeftLogits(String method) {
        double diff = Fixtures.maxAbsDiff(logits(freshWithPeftInit(method)), ref.load(method + ".logits"));
        assertTrue(diff < 1e-5, method + ": logits differ from peft's by " + diff);
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "prefix", "prefix-projection", "prompt", "p-tuning"})
    void threeAdamWStepsOnTheAdapterMatchPeftAndTorch(String method) {
        PeftModel m = freshWithPeftInit(method);
        Map<String, Parameter> trainable = Peft.trainableNamedParameters(m.module());
        AdamW opt = new AdamW(trainable, 0.9, 0.999, 1e-8, 0.01);
        CausalLmLoss loss = new CausalLmLoss();
        INDArray losses = ref.load(method + ".losses");
        for (int k = 0; k < 3; k++) {
            INDArray ids = ref.load("train.batch" + k);
            Tape tape = Tape.forTraining(2, 12);
            double l = loss.forward(tape, m.forward(tape, ids), m.labelsFor(ids));
            assertEquals(losses.getDouble(k), l, 1e-5, method + ": loss of step " + k);
            m.backward(tape, loss.backward(tape, 1.0));
            if (k == 0) {
                for (Map.Entry<String, Parameter> e : trainable.entrySet()) {
                    INDArray expect = ref.load(method + ".grad0." + e.getKey(), DataType.DOUBLE);
                    INDArray got = e.getValue().grad().castTo(DataType.DOUBLE);
                    double rel = got.sub(expect).norm2Number().doubleValue() / expect.norm2Number().doubleValue();
                    assertTrue(rel < 1e-5, method + " " + e.getKey() + ": gradient relative error " + rel);
                }
            }
            opt.step(1e-2);
        }
        // Every weight within 1e-5 of PyTorch's, except entries whose first gradient is non-zero but below Adam's eps (1e-8):
        // there m / (sqrt(v) + eps) turns float rounding of a ~1e-9 gradient into a visible step (one entry of
        // prefix-projection's transform.2.weight, gradient 2.5e-9: 1.2e-5 apart after 3 steps); 1e-4 for those.
        double worst = 0;
        int illConditioned = 0;
        for (Map.Entry<String, Parameter> e : trainable.entrySet()) {
            double[] got = e.getValue().data().castTo(DataType.DOUBLE).reshape(-1).toDoubleVector();
            double[] expect = ref.load(method + ".final." + e.getKey(), DataType.DOUBLE).reshape(-1).toDoubleVector();
            double[] g0 = ref.load(method + ".grad0." + e.getKey(), DataType.DOUBLE).reshape(-1).toDoubleVector();
            for (int i = 0; i < got.length; i++) {
                double d = Math.abs(got[i] - expect[i]);
                if (g0[i] != 0 && Math.abs(g0[i]) < 1e-8) {
                    illConditioned++;
                    assertTrue(d < 1e-4, method + " " + e.getKey() + "[" + i + "] differs by " + d);
                } else {
                    worst = Math.max(worst, d);
                }
            }
        }
        assertTrue(worst < 1e-5, method + ": adapter after 3 AdamW steps differs from peft's by " + worst);
        assertTrue(illConditioned <= 1, method + ": " + illConditioned + " entries with a vanishing gradient");
        for (Parameter p : m.base().module().parameters()) {
            if (!trainable.containsValue(p)) {
                assertEquals(0, p.gradientBufferBytes(), "a frozen base parameter got a gradient buffer");
            }
        }
    }

    /**
     * An adapter trained by collie (3 AdamW steps) and saved reloads with the same logits. With
     * {@code -Dpeft.export=DIR} each method's adapter is written to DIR/&lt;method&gt; together with
     * {@code collie_logits.safetensors}, for {@code make_peft_fixtures.py --check-adapter} to load it in peft.
     */
    @ParameterizedTest
    @ValueSource(strings = {"lora", "prefix", "prefix-projection", "prompt", "p-tuning"})
    void adapterTrainedByCollieSavedAndReloadedGivesTheSameLogits(String method, @TempDir Path tmp) {
        PeftModel m = freshWithPeftInit(method);
        AdamW opt = new AdamW(Peft.trainableNamedParameters(m.module()), 0.9, 0.999, 1e-8, 0.01);
        CausalLmLoss loss = new CausalLmLoss();
        for (int k = 0; k < 3; k++) {
            INDArray ids = ref.load("train.batch" + k);
            Tape tape = Tape.forTraining(2, 12);
            loss.forward(tape, m.forward(tape, ids), m.labelsFor(ids));
            m.backward(tape, loss.backward(tape, 1.0));
            opt.step(1e-2);
        }
        String export = System.getProperty("peft.export");
        Path dir = (export != null ? Path.of(export) : tmp).resolve(method);
        m.saveAdapter(dir);
        INDArray logits = logits(m);
        SafeTensors.write(dir.resolve("collie_logits.safetensors"), Map.of("input_ids", ref.load("input_ids"),
                "logits", logits.reshape(2, logits.size(0) / 2, logits.size(1))), Map.of());
        PeftModel back = Peft.loadAdapter(Fixtures.tiny(DataType.FLOAT), dir);
        double diff = Fixtures.maxAbsDiff(logits(back), logits);
        assertTrue(diff < 1e-6, method + ": reloaded adapter changes the logits by " + diff);
        assertTrue(Fixtures.maxAbsDiff(logits, ref.load(method + ".logits")) > 1e-4, "training changed nothing");
    }

    @Test
    void trainableParameterCountsEqualPeftsReport() throws IOException {
        JsonNode counts = new ObjectMapper().readTree(Fixtures.PEFT.resolve("counts.json").toFile()).get("counts");
        for (String method : Fixtures.METHODS) {
            PeftModel m = Peft.wrap(Fixtures.tiny(DataType.FLOAT), Fixtures.config(method));
            long[] c = Peft.parameterCounts(m.module());
            assertEquals(counts.get(method).get("trainable").asLong(), c[0], method + " trainable");
            assertEquals(counts.get(method).get("all").asLong(), c[1], method + " all");
        }
        PeftModel lora = Peft.wrap(Fixtures.tiny(DataType.FLOAT), Fixtures.config("lora"));
        assertEquals("trainable params: 4,480 || all params: 32,288 || trainable%: 13.8751",
                Peft.parameterReport(lora.module()));
    }

    @Test
    void mergedWeightsEqualPeftsMergeAndUnload() {
        PeftModel m = Peft.loadAdapter(Fixtures.tiny(DataType.FLOAT), Fixtures.PEFT.resolve("lora"));
        var merged = m.mergeAndUnload();
        int checked = 0;
        for (Map.Entry<String, Parameter> e : merged.module().namedParameters().entrySet()) {
            String key = "lora.merged." + e.getKey();
            if (ref.contains(key)) {
                double diff = Fixtures.maxAbsDiff(e.getValue().data(), ref.load(key));
                assertTrue(diff < 1e-6, e.getKey() + " differs from peft's merged weight by " + diff);
                checked++;
            }
        }
        assertEquals(14, checked);
        assertTrue(merged.module().namedParameters().keySet().stream().noneMatch(n -> n.contains("lora")));
    }
}
