package dev.collie.examples;

import dev.collie.core.data.Batch;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.tensor.Workspaces;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.Memory;
import dev.collie.core.train.StepRunner;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.optim.AdamW;
import dev.collie.peft.LoraConfig;
import dev.collie.peft.Peft;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Peak memory of training a 134M-parameter LLaMA (hidden 768, 12 layers, 12 heads, intermediate 2048, vocab 32000,
 * untied head; batch 1×128, fp32, AdamW) three ways, one per JVM so each peak is its own:
 * <pre>
 *   java -cp examples/target/collie.jar dev.collie.examples.LoraMemoryBench full    # full fine-tuning
 *   java -cp examples/target/collie.jar dev.collie.examples.LoraMemoryBench lora    # LoRA r=8, alpha 16, 7 projections
 *   java -cp examples/target/collie.jar dev.collie.examples.LoraMemoryBench frozen  # forward+backward, nothing trained
 * </pre>
 * Prints parameter, gradient, optimizer-state and activation-workspace bytes and the process's peak resident size.
 * Run it with {@code OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1} (as the tests run): with two-threaded OpenMP ops on
 * a busy two-core machine every op's fork/join waits for a descheduled thread, and LoRA's many small ops
 * (0.75 s/step single-threaded) took 11-15 s.
 */
public final class LoraMemoryBench {
    private LoraMemoryBench() {
    }

    public static void main(String[] args) {
        String mode = args.length > 0 ? args[0] : "lora";
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        if (!List.of("full", "lora", "frozen").contains(mode)) {
            System.err.println("usage: LoraMemoryBench full|lora|frozen [steps]");
            System.exit(2);
        }
        DecoderConfig cfg = DecoderConfig.builder().vocabSize(32000).hiddenSize(768).intermediateSize(2048)
                .numHiddenLayers(12).numAttentionHeads(12).numKeyValueHeads(12).headDim(64)
                .maxPositionEmbeddings(2048).tieWordEmbeddings(false).build();
        Nd4j.getRandom().setSeed(1);
        DecoderForCausalLM net = new DecoderForCausalLM(cfg, DataType.FLOAT);
        long rssModel = Memory.residentBytes();
        LanguageModel model = net;
        if (mode.equals("lora")) {
            model = Peft.wrap(net, LoraConfig.builder().r(8).alpha(16)
                    .targets("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj").build());
        } else if (mode.equals("frozen")) {
            net.parameters().forEach(p -> p.setTrainable(false));
        }
        Map<String, Parameter> trainable = Peft.trainableNamedParameters(model.module());
        Optimizer opt = trainable.isEmpty() ? null : new AdamW(trainable);
        System.out.println(mode + ": " + Peft.parameterReport(model.module()));
        double loss = Double.NaN;
        double[] times = new double[steps];
        Random rnd = new Random(7);
        try (StepRunner runner = new StepRunner(model, 1)) {
            for (int s = 0; s < steps; s++) {
                long[][] rows = new long[1][128];
                for (int i = 0; i < 128; i++) {
                    rows[0][i] = rnd.nextInt(cfg.vocabSize());
                }
                INDArray ids = Nd4j.createFromArray(rows);
                long t0 = System.nanoTime();
                loss = runner.forwardBackward(List.of(new Batch(ids, ids, Nd4j.onesLike(ids))));
                if (opt != null) {
                    opt.step(1e-4);
                } else {
                    model.module().zeroGrad();
                }
                times[s] = (System.nanoTime() - t0) / 1e9;
            }
        }
        double[] sorted = times.clone();
        Arrays.sort(sorted);
        double sec = sorted[steps / 2];
        long paramBytes = 0;
        long gradBytes = 0;
        for (Parameter p : model.module().parameters()) {
            paramBytes += p.numel() * p.dtype().width();
            gradBytes += p.gradientBufferBytes();
        }
        long state = opt == null ? 0 : opt.stateBytes();
        double mib = 1 << 20;
        System.out.printf(Locale.ROOT, "%s: loss %.4f, %.2f s/step (median); parameters %.1f MiB, gradients %.1f MiB,"
                        + " optimizer state %.1f MiB, activations workspace %.1f MiB; resident after model creation"
                        + " %.1f MiB, peak resident %.1f MiB%n", mode, loss, sec, paramBytes / mib, gradBytes / mib,
                state / mib, Workspaces.size(StepRunner.WORKSPACE) / mib, rssModel / mib,
                Memory.peakResidentBytes() / mib);
    }
}
