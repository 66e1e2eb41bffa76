package dev.collie.examples.cli;

import dev.collie.core.tensor.Backends;
import dev.collie.core.tensor.MatmulPrecision;
import dev.collie.core.train.Memory;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.generation.Generator;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.Callable;

/**
 * {@code collie bench-generate}: greedy decoding speed of a random LLaMA, timed as
 * {@code tools/bench/pytorch_generate_bench.py} times Hugging Face's {@code generate()}.
 */
@Command(name = "bench-generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Time greedy generation of a random LLaMA: --batch prompts of --seq random tokens, each"
                + " continued by exactly --new-tokens tokens with a KV cache.",
            "The prefill (prompt forward and first token) is timed alone; decode tokens/s = batch x (new tokens - 1)"
                + " / (full time - prefill time), medians of --repeats runs after one warm-up. The last line is"
                + " 'tokens/s: N'."})
final class GenerateBenchCommand implements Callable<Integer> {
    @Mixin BenchShape shape;
    @Option(names = "--new-tokens", paramLabel = "N", defaultValue = "128",
            description = "tokens generated per row (default: ${DEFAULT-VALUE})") int newTokens;
    @Option(names = "--repeats", paramLabel = "R", defaultValue = "3",
            description = "timed runs of each kind (default: ${DEFAULT-VALUE})") int repeats;
    @Mixin MatmulOption matmul;

    @Override
    public Integer call() {
        try (MatmulOption.Scope scope = matmul.apply()) {
            return bench(scope.precision());
        }
    }

    private int bench(MatmulPrecision precision) {
        CliSupport.atLeast("--new-tokens", newTokens, 2);
        CliSupport.atLeast("--repeats", repeats, 1);
        DecoderConfig cfg = shape.config(false);
        Nd4j.getRandom().setSeed(1);
        DecoderForCausalLM model = new DecoderForCausalLM(cfg, DataType.FLOAT);
        Random r = new Random(7);
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < shape.batch(); i++) {
            prompts.add(r.ints(shape.seq(), 1, shape.vocab()).toArray());
        }
        double startup = (System.currentTimeMillis() - ManagementFactory.getRuntimeMXBean().getStartTime()) / 1e3;
        Generator generator = new Generator(model);
        run(generator, prompts, newTokens);   // warm-up
        double prefill = median(generator, prompts, 1);
        double full = median(generator, prompts, newTokens);
        System.out.printf(Locale.ROOT, "model: %,d parameters, hidden %d, layers %d, heads %d/%d, vocab %d; batch %d,"
                        + " prompt %d, %d new tokens; ND4J %s; %s%n", model.parameterCount(), cfg.hiddenSize(),
                cfg.numHiddenLayers(), cfg.numAttentionHeads(), cfg.numKeyValueHeads(), cfg.vocabSize(),
                shape.batch(), shape.seq(), newTokens, Backends.nativeVariant(), MatmulOption.describe(precision));
        System.out.printf(Locale.ROOT, "startup: %.2f s (JVM start to a built model)%n", startup);
        System.out.printf(Locale.ROOT, "prefill: %.1f ms%n", prefill * 1e3);
        System.out.printf(Locale.ROOT, "generate: %.1f ms%n", full * 1e3);
        System.out.printf(Locale.ROOT, "peak memory: %.1f MiB resident%n", Memory.peakResidentBytes() / 1048576.0);
        System.out.printf(Locale.ROOT, "tokens/s: %.1f%n", shape.batch() * (newTokens - 1) / (full - prefill));
        return 0;
    }

    private double median(Generator generator, List<int[]> prompts, int n) {
        double[] t = new double[repeats];
        for (int i = 0; i < repeats; i++) {
            t[i] = run(generator, prompts, n);
        }
        Arrays.sort(t);
        return t[repeats / 2];
    }

    private static double run(Generator generator, List<int[]> prompts, int n) {
        long t0 = System.nanoTime();
        List<int[]> out = generator.generate(prompts, Generator.Options.greedy(n));
        double sec = (System.nanoTime() - t0) / 1e9;
        for (int[] row : out) {
            if (row.length != n) {
                throw new IllegalStateException("a row generated " + row.length + " tokens, not " + n);
            }
        }
        return sec;
    }
}
