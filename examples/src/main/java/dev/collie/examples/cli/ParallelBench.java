package dev.collie.examples.cli;

import dev.collie.core.data.Dataset;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.Sample;
import dev.collie.core.dist.Communicator;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.tensor.ActivationDtype;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.Memory;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.parallel.Parallelism;
import dev.collie.parallel.comm.LocalRanks;
import dev.collie.parallel.dp.RankMemory;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * {@code collie bench --dp/--tp/--pp/--zero}: the ranks as threads of this JVM, each training its share of a
 * random LLaMA with the Trainer; prints each rank's bytes (parameters, gradients, optimizer state,
 * communication buffers), the step time and tokens/s of the whole job, and the process's peak resident size.
 */
final class ParallelBench {
    private static final double MIB = 1048576.0;

    private final DecoderConfig cfg;
    private final int batch;
    private final int seq;
    private final int gradAccum;
    private final int steps;
    private final int warmup;
    private final int workers;
    private final OptimizerOptions opt;
    private final int dp;
    private final int tp;
    private final int pp;
    private final int zero;
    private final ActivationDtype activations;

    /** What one rank measured. */
    private record RankResult(RankMemory memory, long optimizerBytes, List<StepStats> stats, long parameters) {
    }

    ParallelBench(DecoderConfig cfg, int batch, int seq, int gradAccum, int steps, int warmup, int workers,
                  OptimizerOptions opt, int dp, int tp, int pp, int zero, ActivationDtype activations) {
        this.cfg = cfg;
        this.batch = batch;
        this.seq = seq;
        this.gradAccum = gradAccum;
        this.steps = steps;
        this.warmup = warmup;
        this.workers = workers;
        this.opt = opt;
        this.dp = dp;
        this.tp = tp;
        this.pp = pp;
        this.zero = zero;
        this.activations = activations;
    }

    void run() {
        int world = dp * tp * pp;
        report(LocalRanks.run(world, Duration.ofMinutes(10), c -> rank(c, world)));
    }

    private RankResult rank(Communicator c, int world) {
        Nd4j.getRandom().setSeed(1);
        DecoderForCausalLM model = new DecoderForCausalLM(cfg, DataType.FLOAT);
        long parameters = model.parameterCount();
        try (Parallelism par = Parallelism.builder().dp(dp).tp(tp).pp(pp).zero(zero).build(c, model)) {
            Optimizer optimizer = opt.create(par.optimizerParameters());
            CollieConfig config = CollieConfig.builder().shuffle(false).lr(opt.lr).trainMicroBatchSize(batch)
                    .gradientAccumulationSteps(gradAccum).maxSteps(warmup + steps).workerThreads(workers)
                    .activationDtype(activations.label()).build();
            List<StepStats> stats = par.configure(Trainer.builder()).optimizer(optimizer).config(config)
                    .trainData(randomRows((warmup + steps) * batch * gradAccum * dp)).localRanks(world).build().train();
            return new RankResult(par.memory(), optimizer.stateBytes(), stats, parameters);
        }
    }

    private Dataset randomRows(int n) {
        Random r = new Random(100);
        List<Sample> rows = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int[] ids = new int[seq];
            for (int j = 0; j < seq; j++) {
                ids[j] = r.nextInt(cfg.vocabSize());
            }
            rows.add(Sample.causal(ids));
        }
        return Datasets.of(rows);
    }

    private void report(List<RankResult> results) {
        long params = results.get(0).parameters();
        System.out.printf("model: %,d parameters, hidden %d, layers %d, heads %d/%d, vocab %d; %d x %d rows x %d"
                        + " tokens per rank per step; %s; %s activations; dp %d x tp %d x pp %d, ZeRO %d (ranks as"
                        + " threads)%n", params, cfg.hiddenSize(), cfg.numHiddenLayers(), cfg.numAttentionHeads(),
                cfg.numKeyValueHeads(), cfg.vocabSize(), gradAccum, batch, seq, opt.name, activations.label(), dp, tp,
                pp, zero);
        System.out.println("rank | parameters MiB | gradients MiB | optimizer state MiB | buffers MiB | p+g+os MiB"
                + " | bytes/parameter of the model");
        for (int r = 0; r < results.size(); r++) {
            RankResult x = results.get(r);
            RankMemory m = x.memory();
            long pgo = m.parameterBytes() + m.gradientBytes() + x.optimizerBytes();
            System.out.printf("%4d | %14.1f | %13.1f | %19.1f | %11.1f | %10.1f | %.2f%n", r, m.parameterBytes() / MIB,
                    m.gradientBytes() / MIB, x.optimizerBytes() / MIB, m.bufferBytes() / MIB, pgo / MIB,
                    (double) pgo / params);
        }
        List<StepStats> timed = results.get(0).stats().subList(warmup, warmup + steps);
        double[] sec = timed.stream().mapToDouble(StepStats::seconds).sorted().toArray();
        double median = sec[sec.length / 2];
        long tokens = (long) batch * seq * gradAccum * dp;
        System.out.printf("loss: %.4f%n", timed.get(timed.size() - 1).loss());
        System.out.printf("step time: %.1f ms (median of %d; min %.1f, max %.1f)%n", median * 1e3, sec.length,
                sec[0] * 1e3, sec[sec.length - 1] * 1e3);
        System.out.printf("peak memory: %.1f MiB resident (the whole process, all %d ranks)%n",
                Memory.peakResidentBytes() / MIB, results.size());
        System.out.printf("step times (s): %s%n", Arrays.toString(sec));
        System.out.printf("tokens/s: %.1f%n", tokens / median);
    }
}
