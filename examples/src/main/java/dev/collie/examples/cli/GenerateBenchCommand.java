package dev.collie.examples.cli;

import dev.collie.core.tensor.Backends;
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
            "The prefill is the time to the first new token (the prompts' forward and its pick); decode tokens/s ="
                + " batch x (new tokens - 1) / the time after it; medians of --repeats runs after one warm-up. The"
                + " last line is 'tokens/s: N'."})
final class GenerateBenchCommand implements Callable<Integer> {
    @Mixin BenchShape shape;
    @Option(names = "--new-tokens", paramLabel = "N", defaultValue = "128",
            description = "tokens generated per row (default: ${DEFAULT-VALUE})") int newTokens;
    @Option(names = "--repeats", paramLabel = "R", defaultValue = "3",
            description = "timed runs of each kind (default: ${DEFAULT-VALUE})") int repeats;
    @Mixin MatmulOption matmul;

    @Override
    public Integer call() {
        CliSupport.atLeast("--new-tokens", newTokens, 2);
        CliSupport.atLeast("--repeats", repeats, 1);
        // auto times the prompts' products (batch × prompt rows). Not a decoding step's (one row per sequence): alone
        // those timed faster with bf16 products on an AMD EPYC Zen 5 (5.0 vs 3.2 ms over the 4 shapes at batch 4)
        // while decoding itself ran slower with them (8.8 vs 10.9 tokens/s)
        try (MatmulOption.Scope scope = matmul.apply(
                () -> shape.config(false).matmulShapes((long) shape.batch() * shape.seq()))) {
            return bench(scope);
        }
    }

    private int bench(MatmulOption.Scope matmuls) {
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
        run(generator, prompts);   // warm-up
        double[][] runs = new double[repeats][];
        for (int i = 0; i < repeats; i++) {
            runs[i] = run(generator, prompts);
        }
        double prefill = median(runs, 0);
        double decode = median(runs, 1);
        System.out.printf(Locale.ROOT, "model: %,d parameters, hidden %d, layers %d, heads %d/%d, vocab %d; batch %d,"
                        + " prompt %d, %d new tokens; ND4J %s; %s%n", model.parameterCount(), cfg.hiddenSize(),
                cfg.numHiddenLayers(), cfg.numAttentionHeads(), cfg.numKeyValueHeads(), cfg.vocabSize(),
                shape.batch(), shape.seq(), newTokens, Backends.nativeVariant(), MatmulOption.describe(matmuls));
        System.out.printf(Locale.ROOT, "startup: %.2f s (JVM start to a built model)%n", startup);
        System.out.printf(Locale.ROOT, "prefill: %.1f ms%n", prefill * 1e3);
        System.out.printf(Locale.ROOT, "generate: %.1f ms%n", median(runs, 2) * 1e3);
        System.out.printf(Locale.ROOT, "peak memory: %.1f MiB resident%n", Memory.peakResidentBytes() / 1048576.0);
        System.out.printf(Locale.ROOT, "tokens/s: %.1f%n", shape.batch() * (newTokens - 1) / decode);
        return 0;
    }

    private static double median(double[][] runs, int column) {
        double[] v = new double[runs.length];
        for (int i = 0; i < v.length; i++) {
            v[i] = runs[i][column];
        }
        Arrays.sort(v);
        return v[v.length / 2];
    }

    /** One generation: seconds to the first new token, seconds after it, and the whole call's. */
    private double[] run(Generator generator, List<int[]> prompts) {
        long t0 = System.nanoTime();
        Generator.Result r = generator.generate(prompts, Generator.Options.greedy(newTokens), (row, id) -> true);
        double sec = (System.nanoTime() - t0) / 1e9;
        for (Generator.Completion c : r.completions()) {
            if (c.tokens().length != newTokens) {
                throw new IllegalStateException("a row generated " + c.tokens().length + " tokens, not " + newTokens);
            }
        }
        return new double[] {r.prefillNanos() / 1e9, r.decodeNanos() / 1e9, sec};
    }
}
