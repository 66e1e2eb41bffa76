package dev.collie.models.decoder;

import dev.collie.core.testing.ToyLanguageModel;
import dev.collie.core.CollieException;
import dev.collie.core.data.Batch;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.optim.Sgd;
import dev.collie.core.tensor.ActivationDtype;
import dev.collie.core.tensor.Workspaces;
import dev.collie.core.testing.ToyLanguageModel;
import dev.collie.core.train.ActivationCheckpointing;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.StepRunner;
import dev.collie.core.train.Trainer;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Activations stored as bf16 ({@code activation_dtype}): a float32 step's gradients within bf16's precision of the
 * fp32 ones (and not equal: the narrowing happened), the saved bytes halved, float64 models untouched.
 */
class ActivationDtypeTest {
    /** Two layers, 4 query heads sharing 2 key/value heads; every saved float32 activation has ≥ 1024 elements. */
    private static DecoderForCausalLM model(DataType dtype) {
        DecoderConfig c = DecoderConfig.builder().vocabSize(96).hiddenSize(64).intermediateSize(160)
                .numHiddenLayers(2).numAttentionHeads(4).numKeyValueHeads(2).maxPositionEmbeddings(64)
                .initializerRange(0.1).build();
        Nd4j.getRandom().setSeed(5);
        return new DecoderForCausalLM(c, dtype);
    }

    private static Batch batch() {
        return ToyLanguageModel.randomBatch(2, 16, 96, 11);
    }

    /** What one forward/backward left: loss, gradients, bytes stashed, workspace sizes once learned. */
    private record Step(double loss, Map<String, INDArray> grads, long stashedBytes, long workspaceBytes,
                        long scratchBytes) {
    }

    /**
     * Runs {@code model}'s step on a fresh thread (workspaces are per thread, so each run learns its own sizes), one
     * worker, activations stored as {@code dtype}.
     */
    private static Step step(DecoderForCausalLM model, ActivationDtype dtype) throws Exception {
        AtomicReference<Object> out = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                Batch b = batch();
                StepRunner runner = new StepRunner(model, 1);
                runner.setActivationDtype(dtype);
                double loss = runner.forwardBackward(List.of(b));
                Map<String, INDArray> grads = new LinkedHashMap<>();
                model.namedParameters().forEach((n, p) -> grads.put(n, p.grad().dup()));
                model.parameters().forEach(Parameter::zeroGrad);
                runner.forwardBackward(List.of(b));                 // a second step: the workspaces' sizes are learned
                model.parameters().forEach(Parameter::zeroGrad);
                long ws = Workspaces.size(StepRunner.WORKSPACE);
                long scratch = Workspaces.scratchSize();
                long stashed;
                try (MemoryWorkspace w = Workspaces.open("activation-dtype-test")) {
                    Tape tape = Tape.forTraining(b.rows(), b.seqLen(), dtype);
                    model.forward(tape, b.inputIds());
                    stashed = tape.stashedBytes();
                }
                runner.close();
                out.set(new Step(loss, grads, stashed, ws, scratch));
            } catch (Throwable e) {
                out.set(e);
            }
        });
        t.start();
        t.join();
        if (out.get() instanceof Throwable e) {
            throw new AssertionError(e);
        }
        return (Step) out.get();
    }

    private static double relativeError(INDArray got, INDArray want) {
        return got.castTo(DataType.DOUBLE).sub(want.castTo(DataType.DOUBLE)).norm2Number().doubleValue()
                / want.castTo(DataType.DOUBLE).norm2Number().doubleValue();
    }

    @Test
    void bf16ActivationsGiveGradientsWithinBf16PrecisionAndHalveTheSavedBytes() throws Exception {
        DecoderForCausalLM model = model(DataType.FLOAT);
        Step fp32 = step(model, ActivationDtype.FP32);
        Step bf16 = step(model, ActivationDtype.BF16);
        // the forward computes in fp32 either way: only what backward reads was rounded
        assertEquals(fp32.loss(), bf16.loss(), 0.0);
        boolean anyDiffers = false;
        for (String n : fp32.grads().keySet()) {
            INDArray want = fp32.grads().get(n);
            INDArray got = bf16.grads().get(n);
            double rel = relativeError(got, want);
            System.out.printf("%s: relative error %.3e%n", n, rel);
            // each stored value is within 2^-8 of its own size (about 2^-9 on average); a gradient reads a few of
            // them along each path (the input of a product; probabilities and values; a norm's xhat), so its error
            // is a small multiple of 2^-9: measured 1.3e-3 to 4.5e-3 here, against fp32's ~1e-7
            assertTrue(rel < Math.scalb(1.0, -7), n + ": relative error " + rel);
            anyDiffers |= !got.equals(want);
        }
        assertTrue(anyDiffers, "bitwise the fp32 gradients: nothing was narrowed");
        // every activation stashed here is float32 with ≥ 1024 elements: exactly half the bytes
        assertEquals(fp32.stashedBytes(), 2 * bf16.stashedBytes());
        System.out.printf("stashed %d -> %d bytes; workspace %d -> %d, scratch %d -> %d%n", fp32.stashedBytes(),
                bf16.stashedBytes(), fp32.workspaceBytes(), bf16.workspaceBytes(), fp32.scratchBytes(),
                bf16.scratchBytes());
        // the micro-batch's workspace no longer holds the fp32 copies (nor the layers' other temporaries)
        assertTrue(bf16.workspaceBytes() <= fp32.workspaceBytes() - fp32.stashedBytes() / 2,
                bf16.workspaceBytes() + " vs " + fp32.workspaceBytes());
        assertTrue(bf16.workspaceBytes() + bf16.scratchBytes() < fp32.workspaceBytes() + fp32.scratchBytes());
    }

    @Test
    void checkpointedBlocksRecomputeInFp32AndTheRestIsNarrowed() throws Exception {
        Step fp32 = step(model(DataType.FLOAT), ActivationDtype.FP32);
        DecoderForCausalLM recomputed = model(DataType.FLOAT);
        ActivationCheckpointing.apply(recomputed, true);
        Step bf16 = step(recomputed, ActivationDtype.BF16);
        assertEquals(fp32.loss(), bf16.loss(), 0.0);
        for (String n : fp32.grads().keySet()) {
            double rel = relativeError(bf16.grads().get(n), fp32.grads().get(n));
            assertTrue(rel < Math.scalb(1.0, -7), n + ": relative error " + rel);
        }
        // the blocks keep only their inputs (as computed); the final norm and the head stash theirs narrowed
        assertTrue(bf16.stashedBytes() < fp32.stashedBytes() / 4, bf16.stashedBytes() + " bytes stashed");
    }

    @Test
    void float64ModelsKeepTheirActivationsBitForBit() throws Exception {
        DecoderForCausalLM model = model(DataType.DOUBLE);
        Step fp32 = step(model, ActivationDtype.FP32);
        Step bf16 = step(model, ActivationDtype.BF16);
        assertEquals(fp32.loss(), bf16.loss(), 0.0);
        for (String n : fp32.grads().keySet()) {
            assertEquals(fp32.grads().get(n), bf16.grads().get(n), n);
        }
        assertEquals(fp32.stashedBytes(), bf16.stashedBytes());
    }

    @Test
    void theTrainerRefusesBf16ActivationsForAFloat64Model() {
        ToyLanguageModel toy = new ToyLanguageModel(16, 6, DataType.DOUBLE, 3);
        CollieConfig config = CollieConfig.builder().trainMicroBatchSize(2).activationDtype("bf16").build();
        var e = assertThrows(CollieException.class, () -> Trainer.builder().model(toy)
                .optimizer(new Sgd(toy.namedParameters())).config(config).trainData(ToyLanguageModel.rows(4, 6, 16, 1))
                .build());
        assertTrue(e.getMessage().startsWith("config: activation_dtype = bf16 needs a float32 model"), e.getMessage());
    }
}
