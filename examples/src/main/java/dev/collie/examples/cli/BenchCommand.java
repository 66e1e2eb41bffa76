package dev.collie.examples.cli;

import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.LayerStack;
import dev.collie.core.nn.Tape;
import dev.collie.core.optim.HessianEstimator;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.tensor.ActivationDtype;
import dev.collie.core.tensor.Backends;
import dev.collie.core.tensor.KernelTimes;
import dev.collie.core.tensor.Workspaces;
import dev.collie.core.CollieException;
import dev.collie.core.data.Batch;
import dev.collie.core.train.ActivationCheckpointing;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.Memory;
import dev.collie.core.train.StepRunner;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;

/**
 * {@code collie bench}: trains a random LLaMA on random tokens and reports speed and memory. With {@code train}'s
 * PEFT flags ({@code --lora-r 8 --lora-alpha 16 --lora-targets q_proj,v_proj}, prefix or prompt tuning) only the
 * adapter trains: the base is frozen, so it has no gradient buffers, no optimizer state and no weight-gradient
 * products, and the memory line says so.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Time training steps of a random LLaMA; the last line is 'tokens/s: N'.")
final class BenchCommand implements Callable<Integer> {
    @Mixin BenchShape shape;
    @Option(names = "--steps", paramLabel = "S", defaultValue = "10",
            description = "timed steps (default: ${DEFAULT-VALUE}); tokens/s is the median step's") int steps;
    @Option(names = "--warmup", paramLabel = "W", defaultValue = "2",
            description = "untimed steps first (default: ${DEFAULT-VALUE})") int warmup;
    @Option(names = "--tie-embeddings", description = "one matrix for the embedding and the output head") boolean tie;
    @Option(names = "--checkpointing", description = "recompute each block in backward") boolean checkpointing;
    @Option(names = "--profile", description = "print time per pipeline layer, loss and optimizer") boolean profile;
    @Option(names = "--jfr", paramLabel = "FILE", description = "record the timed steps with Java Flight Recorder"
            + " (1 ms execution and native samples) into FILE, for tools/bench/step_profile.py") java.nio.file.Path jfr;
    @Option(names = "--kernel-times", description = "time every kernel call of the timed steps, by op, in every worker"
            + " thread (a reflective proxy: slower steps, for the breakdown only)") boolean kernelTimes;
    @Option(names = "--rss-every", paramLabel = "N", description = "print the resident size every N steps (0: only first and last)",
            defaultValue = "0") int rssEvery;
    @Option(names = "--workers", paramLabel = "N", description = "threads sharing the model, each taking part of the batch's rows"
            + " (default 0: one per core)", defaultValue = "0") int workers;
    @Option(names = "--dp", paramLabel = "N", defaultValue = "1", description = "data-parallel ranks (threads of this JVM)") int dp;
    @Option(names = "--tp", paramLabel = "N", defaultValue = "1", description = "tensor-parallel ranks") int tp;
    @Option(names = "--pp", paramLabel = "N", defaultValue = "1", description = "pipeline stages") int pp;
    @Option(names = "--zero", paramLabel = "S", defaultValue = "0", description = "ZeRO stage 0-3 over --dp") int zero;
    @Option(names = "--grad-accum", paramLabel = "K", defaultValue = "1",
            description = "micro-batches of --batch rows per step (per data-parallel rank; the 1F1B micro-batches under --pp)")
    int gradAccum;
    @Mixin OptimizerOptions opt;
    @Mixin MatmulOption matmul;
    @Mixin PeftOptions peft;
    @Mixin ActivationOption activation;

    @Override
    public Integer call() {
        CliSupport.atLeast("--steps", steps, 1);
        CliSupport.atLeast("--warmup", warmup, 0);
        CliSupport.atLeast("--rss-every", rssEvery, 0);
        CliSupport.atLeast("--workers", workers, 0);
        CliSupport.atLeast("--grad-accum", gradAccum, 1);
        CliSupport.atLeast("--dp", dp, 1);
        CliSupport.atLeast("--tp", tp, 1);
        CliSupport.atLeast("--pp", pp, 1);
        ActivationDtype activations = activation.dtype();
        DecoderConfig cfg = shape.config(tie);
        // every rank (a thread here) builds the whole model before it keeps its share; a frozen base has no gradients
        CliSupport.requireStepMemory(cfg, shape.batch(), shape.seq(), dp * tp * pp, !peft.active(),
                "use a smaller --seq or --batch");
        // auto times the products of a micro-batch's rows on all cores (the workers split the same products by rows)
        try (MatmulOption.Scope scope = matmul.apply(() -> cfg.matmulShapes((long) shape.batch() * shape.seq()))) {
            return bench(cfg, scope);
        }
    }

    private int bench(DecoderConfig cfg, MatmulOption.Scope matmuls) {
        ActivationDtype activations = activation.dtype();
        int batch = shape.batch();
        int seq = shape.seq();
        if (dp * tp * pp > 1 || gradAccum > 1) {
            if (peft.active()) {
                throw new CollieException("bench times PEFT (--lora-r, --prefix-tokens, --prompt-tokens, --adapter) on"
                        + " one rank without --grad-accum; time adapters under --dp/--tp/--pp with 'collie train'");
            }
            new ParallelBench(cfg, batch, seq, gradAccum, steps, warmup, workers, opt, dp, tp, pp, zero, activations)
                    .run();
            return 0;
        }
        Nd4j.getRandom().setSeed(1);
        DecoderForCausalLM net = new DecoderForCausalLM(cfg, DataType.FLOAT);
        ActivationCheckpointing.apply(net, checkpointing);
        LanguageModel model = peft.apply(net, null);        // net itself without PEFT flags; else the base frozen
        Map<String, Parameter> trainable = peft.trainableParameters(model);
        Optimizer optimizer = opt.create(trainable);
        if (optimizer.fusedBackward() || optimizer instanceof HessianEstimator) {
            throw new CollieException("bench times step-style optimizers only; " + optimizer.getClass().getSimpleName()
                    + " needs the Trainer (gradient hooks or Hessian refreshes): time it with 'collie train'");
        }
        CausalLmLoss loss = new CausalLmLoss();
        long params = model.module().parameterCount();
        StepRunner runner = new StepRunner(model, workers);
        runner.setActivationDtype(activations);
        runner.setActivationDtype(activations);
        System.out.printf("model: %,d parameters, hidden %d, layers %d, heads %d/%d, vocab %d; batch %dx%d; %s;"
                        + " ND4J %s; %s; element-wise %s; %s activations; %d worker thread(s)%n", params,
                cfg.hiddenSize(), cfg.numHiddenLayers(), cfg.numAttentionHeads(), cfg.numKeyValueHeads(),
                cfg.vocabSize(), batch, seq, opt.name, Backends.nativeVariant(), MatmulOption.describe(matmuls),
                Backends.elementwiseEngine(), activations.label(), runner.workers());
        long tokens = (long) batch * seq;
        System.out.printf("resident after building the model: %.1f MiB (peak %.1f MiB)%n",
                Memory.residentBytes() / 1048576.0, Memory.peakResidentBytes() / 1048576.0);
        double[] times = new double[steps];
        long rssFirst = 0;
        double lastLoss = Double.NaN;
        StepRecording recording = null;
        long optimizerNanos = 0;
        for (int s = -warmup; s < steps; s++) {
            if (s == 0 && jfr != null) {
                recording = StepRecording.start(jfr);
            }
            if (s == 0 && kernelTimes) {
                KernelTimes.start();
            }
            INDArray ids = randomIds(s + 100);
            long t0 = System.nanoTime();
            if (profile && s == steps - 1) {
                lastLoss = profiledStep(model, loss, optimizer, ids, activations);
            } else {
                lastLoss = runner.forwardBackward(List.of(new Batch(ids, ids, Nd4j.onesLike(ids))));
                long o0 = System.nanoTime();
                optimizer.step(opt.lr);
                if (s >= 0) {
                    optimizerNanos += System.nanoTime() - o0;
                }
            }
            double sec = (System.nanoTime() - t0) / 1e9;
            if (s >= 0) {
                times[s] = sec;
            }
            if (s == 0) {
                rssFirst = Memory.residentBytes();
            }
            if (rssEvery > 0 && s >= 0 && (s + 1) % rssEvery == 0) {
                System.out.printf("  step %d: resident %.1f MiB (JVM heap committed %.1f MiB)%n", s + 1,
                        Memory.residentBytes() / 1048576.0, Runtime.getRuntime().totalMemory() / 1048576.0);
            }
        }
        if (recording != null) {
            recording.stop();
            System.out.printf("flight recording of the %d timed steps: %s%n", steps, jfr);
        }
        if (kernelTimes) {
            printKernelTimes(KernelTimes.stop(), runner.workers());
        }
        System.out.printf("optimizer step: %.1f ms (mean of the timed steps)%n", optimizerNanos / 1e6 / steps);
        double[] sorted = times.clone();
        Arrays.sort(sorted);
        double median = sorted[steps / 2];
        double flops = shape.stepFlops() + (peft.active() ? peftFlops(model, tokens) : 0);
        System.out.printf("loss: %.4f%n", lastLoss);
        System.out.printf("step time: %.1f ms (median of %d; min %.1f, max %.1f)%n", median * 1e3, steps,
                sorted[0] * 1e3, sorted[steps - 1] * 1e3);
        System.out.printf("FLOP/s: %.1f GFLOP/s (%.2f GFLOP per step)%n", flops / median / 1e9, flops / 1e9);
        long paramBytes = 0;
        long frozenBytes = 0;
        long gradBytes = 0;
        long frozenGradBytes = 0;
        IdentityHashMap<Parameter, Boolean> seen = new IdentityHashMap<>();
        for (Parameter p : model.module().parameters()) {
            if (seen.put(p, Boolean.TRUE) != null) {
                continue;
            }
            paramBytes += p.numel() * p.dtype().width();
            gradBytes += p.gradientBufferBytes();
            if (!p.requiresGrad()) {
                frozenBytes += p.numel() * p.dtype().width();
                frozenGradBytes += p.gradientBufferBytes();
            }
        }
        if (frozenGradBytes > 0) {   // a frozen parameter must never get a gradient buffer (Parameter refuses them)
            throw new CollieException(String.format("frozen parameters hold %.1f MiB of gradient buffers",
                    frozenGradBytes / 1048576.0));
        }
        String frozen = frozenBytes == 0 ? "" : String.format(" (%.1f MiB frozen, %.1f MiB trainable)",
                frozenBytes / 1048576.0, (paramBytes - frozenBytes) / 1048576.0);
        System.out.printf("peak memory: %.1f MiB resident (%.1f bytes/parameter): parameters %.1f MiB%s, gradients %.1f MiB,"
                        + " optimizer state %.1f MiB (%.1f bytes/parameter together), activations workspace %.1f MiB,"
                        + " backward scratch %.1f MiB, JVM heap committed %.1f MiB%n",
                Memory.peakResidentBytes() / 1048576.0, Memory.peakResidentBytes() / (double) params,
                paramBytes / 1048576.0, frozen, gradBytes / 1048576.0, optimizer.stateBytes() / 1048576.0,
                (double) (paramBytes + gradBytes + optimizer.stateBytes()) / params, Workspaces.size(StepRunner.WORKSPACE) / 1048576.0,
                Workspaces.scratchSize() / 1048576.0, Runtime.getRuntime().totalMemory() / 1048576.0);
        System.out.printf("resident: %.1f MiB after the first timed step, %.1f MiB after the last (%d steps)%n",
                rssFirst / 1048576.0, Memory.residentBytes() / 1048576.0, steps);
        System.out.printf("tokens/s: %.1f%n", tokens / median);
        return 0;
    }

    /** Thread time per step by kernel op (summed over the worker threads, and divided by their number). */
    private void printKernelTimes(Map<String, long[]> times, int threads) {
        System.out.printf("kernel times per step (thread ms summed over %d worker threads, and / %d):%n", threads,
                threads);
        double total = 0;
        for (Map.Entry<String, long[]> e : times.entrySet()) {
            double ms = e.getValue()[0] / 1e6 / steps;
            total += ms;
            System.out.printf("  %-26s %9.1f ms %9.1f ms  %7.1f calls%n", e.getKey(), ms, ms / threads,
                    (double) e.getValue()[1] / steps);
        }
        System.out.printf("  %-26s %9.1f ms %9.1f ms%n", "all kernels", total, total / threads);
    }

    /** One step with a timer around each pipeline layer's forward and backward, the loss and the optimizer. */
    private double profiledStep(LanguageModel model, CausalLmLoss loss, Optimizer optimizer, INDArray ids,
                                ActivationDtype activations) {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());   // one stream: all cores per op
        var layers = model.pipelineLayers();
        double[] fwd = new double[layers.size()];
        double[] bwd = new double[layers.size()];
        double l;
        long t;
        double lossMs;
        try (MemoryWorkspace ws = Workspaces.open("bench")) {
            Tape tape = Tape.forTraining(shape.batch(), shape.seq(), activations);
            INDArray x = ids;
            for (int i = 0; i < layers.size(); i++) {
                t = System.nanoTime();
                x = LayerStack.forward(List.of(layers.get(i)), tape, x);   // as DecoderForCausalLM.forward does
                fwd[i] = (System.nanoTime() - t) / 1e6;
            }
            t = System.nanoTime();
            l = loss.forward(tape, x, model.labelsFor(ids));
            INDArray d = loss.backward(tape, 1.0);
            lossMs = (System.nanoTime() - t) / 1e6;
            for (int i = layers.size() - 1; i >= 0; i--) {
                t = System.nanoTime();
                var layer = layers.get(i);
                INDArray dy = d;
                d = Workspaces.scratch(() -> layer.backward(tape, dy));   // as DecoderForCausalLM.backward does
                bwd[i] = (System.nanoTime() - t) / 1e6;
            }
        }
        t = System.nanoTime();
        optimizer.step(opt.lr);
        double optMs = (System.nanoTime() - t) / 1e6;
        for (int i = 0; i < layers.size(); i++) {
            System.out.printf("  %-24s forward %8.1f ms  backward %8.1f ms%n", layers.get(i).getClass().getSimpleName(),
                    fwd[i], bwd[i]);
        }
        System.out.printf("  %-24s %8.1f ms%n  %-24s %8.1f ms%n", "loss (fwd+bwd)", lossMs, "optimizer step", optMs);
        return l;
    }

    /**
     * What a PEFT model changes in {@link BenchShape#stepFlops()}: the frozen base skips every weight-gradient
     * product ({@code -2·in·out} per token of each matrix), the adapter's trainable linears (LoRA's {@code A} and
     * {@code B}) add their three products ({@code +6·in·out} per token).
     */
    private double peftFlops(LanguageModel model, long tokens) {
        double perToken = -2.0 * shape.matmulParameters();
        IdentityHashMap<Parameter, Boolean> seen = new IdentityHashMap<>();
        for (var m : model.module().namedModules().values()) {
            if (m instanceof Linear l && l.weight().requiresGrad() && seen.put(l.weight(), Boolean.TRUE) == null) {
                perToken += 6.0 * l.weight().numel();
            }
        }
        return perToken * tokens;
    }

    private INDArray randomIds(long seed) {
        Random r = new Random(seed);
        long[][] ids = new long[shape.batch()][shape.seq()];
        for (long[] row : ids) {
            for (int i = 0; i < row.length; i++) {
                row[i] = r.nextInt(shape.vocab());
            }
        }
        return Nd4j.createFromArray(ids);
    }
}
