package dev.collie.peft;

import dev.collie.core.data.Batch;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.tensor.ProductLog;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.StepRunner;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.optim.AdamW;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A LoRA step over a frozen base does only the work the adapter needs: the frozen weights get no gradient buffers and
 * no optimizer state, and no weight-gradient product ({@code dyᵀ·x}) runs for them, only their input gradients. A
 * control step of the unfrozen model shows that the product log sees every linear's weight gradient.
 */
class FrozenBaseWorkTest {
    /** r 3 makes the adapter's shapes ({@code [3, in]}, {@code [out, 3]}) differ from every base weight's. */
    private static final LoraConfig QV = LoraConfig.builder().r(3).alpha(6).dropout(0).targets("q_proj", "v_proj")
            .build();

    @Test
    void aLoraStepRunsNoWeightGradientProductForTheFrozenBaseAndKeepsNoBuffersForIt() {
        DecoderForCausalLM net = Fixtures.tiny(DataType.FLOAT);
        PeftModel m = Peft.wrap(net, QV);
        Map<String, Parameter> trainable = Peft.trainableNamedParameters(m.module());
        for (Parameter p : trainable.values()) {
            p.data().addi(0.05);   // B starts at zero, which would leave A's gradient zero (still computed)
        }
        Optimizer opt = new AdamW(trainable);
        List<ProductLog.Product> products = step(m, opt);

        int layers = net.config().numHiddenLayers();
        assertEquals(4 * layers, trainable.size(), "lora_A and lora_B of q_proj and v_proj per layer");
        List<long[]> frozenShapes = new ArrayList<>();
        long stateBytes = opt.stateBytes();
        long trainableBytes = 0;
        for (Parameter p : m.module().parameters()) {
            if (p.requiresGrad()) {
                trainableBytes += p.numel() * 4;
                continue;
            }
            assertNull(p.grad(), p + " got a gradient");
            assertEquals(0, p.gradientBufferBytes(), p + " holds a gradient buffer");
            if (p.shape().length == 2) {
                frozenShapes.add(p.shape());
            }
        }
        assertTrue(stateBytes <= 2 * trainableBytes, "AdamW holds " + stateBytes + " bytes of state for "
                + trainableBytes + " bytes of trainable parameters: state for frozen ones?");
        List<ProductLog.Product> weightGradients = products.stream()
                .filter(ProductLog.Product::isWeightGradientShaped).toList();
        for (ProductLog.Product p : weightGradients) {
            for (long[] s : frozenShapes) {
                assertTrue(!Arrays.equals(s, p.out()), "a frozen weight's gradient was computed: " + p);
            }
        }
        // one per adapter matrix, none for the 7 projections of each layer nor for the head
        assertEquals(trainable.size(), weightGradients.size(), weightGradients.toString());
    }

    @Test
    void theControlStepOfTheUnfrozenModelLogsEveryLinearsWeightGradient() {
        DecoderForCausalLM net = Fixtures.tiny(DataType.FLOAT);
        long linears = net.namedModules().values().stream().filter(x -> x instanceof Linear).count();
        List<ProductLog.Product> products = step(net, new AdamW(net.namedParameters()));
        long weightGradients = products.stream().filter(ProductLog.Product::isWeightGradientShaped).count();
        assertEquals(linears, weightGradients, "7 projections per layer and the head");
    }

    /** One forward, backward and optimizer step of {@code model} on a fixed batch, with its products logged. */
    private static List<ProductLog.Product> step(LanguageModel model, Optimizer opt) {
        INDArray ids = Nd4j.createFromArray(new long[][] {{1, 5, 9, 13, 17, 21, 25, 29}, {2, 6, 10, 14, 18, 22, 26, 30}});
        try (StepRunner runner = new StepRunner(model, 1); ProductLog log = ProductLog.open()) {
            runner.forwardBackward(List.of(new Batch(ids, ids, Nd4j.onesLike(ids))));
            opt.step(1e-3);
            return log.products();
        }
    }
}
