package dev.collie.examples;

import dev.collie.core.CollieException;
import dev.collie.core.data.Dataset;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.Sample;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.tensor.Backends;
import dev.collie.core.tensor.Workspaces;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.Memory;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.optim.AdaLomo;
import dev.collie.optim.AdamW;
import dev.collie.optim.Adan;
import dev.collie.optim.Lion;
import dev.collie.optim.Lomo;
import dev.collie.optim.SophiaG;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.awt.Color;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * Memory per trainable parameter of each optimizer on a LLaMA of 134M parameters (hidden 768, 12 layers,
 * 12 heads, intermediate 2048, vocabulary 32000, untied), fp32, trained by the Trainer for 3 steps of one
 * 128-token row. Each optimizer runs in its own JVM (forked from this main, with the serial GC and
 * {@code MALLOC_MMAP_THRESHOLD_=131072} so that freed native buffers leave RSS at once, and a 32 MiB young
 * generation so that the Java heap's resident size does not grow with the steps run), so peak RSS is its own.
 * Reported per optimizer after the last step: bytes of parameters + gradient buffers still held +
 * optimizer state, divided by the parameter count; the activation workspaces; peak RSS, and peak RSS
 * minus the RSS before the model was built.
 *
 * <pre>java -cp examples/target/collie.jar dev.collie.examples.OptimizerMemoryBench [--png FILE] [--doc FILE]</pre>
 *
 * Prints a Markdown table, writes it between the {@code memory-table} markers of {@code docs/optimizers.md}
 * and plots it to {@code docs/optimizer-memory.png}. {@code --one NAME} measures one optimizer in this JVM.
 */
public final class OptimizerMemoryBench {
    static final List<String> OPTIMIZERS = List.of("adamw", "lion", "adan", "sophia", "lomo", "adalomo");
    /** The goals: bytes per parameter (params + gradients + state); for LOMO/AdaLomo about gradients and RSS. */
    static final Map<String, String> GOALS = Map.of("adamw", "≤ 16.5", "lion", "≤ 12.5", "adan", "≤ 24.5",
            "sophia", "≤ 16.5", "lomo", "no gradients held; RSS ratio ≤ 1.1", "adalomo", "no gradients held; RSS ratio ≤ 1.1");
    private static final int STEPS = 3;
    private static final int SEQ = 128;

    private OptimizerMemoryBench() {
    }

    /** One optimizer's measurements. */
    record Result(String name, long params, long paramBytes, long gradBytes, long stateBytes, long activationBytes,
                  long optimizerScratchBytes, long baselineRss, long peakRss, double secondsPerStep) {
        double bytesPerParam() {
            return (paramBytes + gradBytes + stateBytes) / (double) params;
        }

        String line() {
            return String.format(Locale.ROOT, "RESULT %s %d %d %d %d %d %d %d %d %.3f", name, params, paramBytes,
                    gradBytes, stateBytes, activationBytes, optimizerScratchBytes, baselineRss, peakRss, secondsPerStep);
        }

        static Result parse(String line) {
            String[] f = line.trim().split("\\s+");
            return new Result(f[1], Long.parseLong(f[2]), Long.parseLong(f[3]), Long.parseLong(f[4]),
                    Long.parseLong(f[5]), Long.parseLong(f[6]), Long.parseLong(f[7]), Long.parseLong(f[8]),
                    Long.parseLong(f[9]), Double.parseDouble(f[10]));
        }
    }

    public static void main(String[] args) throws Exception {
        Path png = Path.of("docs", "optimizer-memory.png");
        Path doc = Path.of("docs", "optimizers.md");
        String one = null;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--one" -> one = args[i + 1];
                case "--png" -> png = Path.of(args[i + 1]);
                case "--doc" -> doc = Path.of(args[i + 1]);
                default -> throw new CollieException("usage: OptimizerMemoryBench [--one NAME] [--png FILE] [--doc FILE]");
            }
        }
        if (one != null) {
            System.out.println(measure(one).line());
            return;
        }
        List<Result> results = new ArrayList<>();
        for (String name : OPTIMIZERS) {
            results.add(fork(name));
        }
        String table = table(results);
        System.out.print(table);
        plot(results, png);
        System.out.println("plot: " + png);
        if (Files.isRegularFile(doc)) {
            replaceRegion(doc, "memory-table", table);
            System.out.println("table written into " + doc);
        }
    }

    static DecoderConfig modelConfig() {
        return DecoderConfig.builder().vocabSize(32000).hiddenSize(768).intermediateSize(2048).numHiddenLayers(12)
                .numAttentionHeads(12).numKeyValueHeads(12).headDim(64).maxPositionEmbeddings(2048)
                .tieWordEmbeddings(false).build();
    }

    static Optimizer create(String name, Map<String, Parameter> params) {
        return switch (name) {
            case "adamw" -> new AdamW(params);
            case "lion" -> new Lion(params);
            case "adan" -> new Adan(params);
            case "sophia" -> new SophiaG(params, 0.965, 0.99, 0.04, 0.1, 5120, 2); // a Hessian refresh within 3 steps
            case "lomo" -> new Lomo(params);
            case "adalomo" -> new AdaLomo(params);
            default -> throw new CollieException("unknown optimizer " + name + " (" + String.join(", ", OPTIMIZERS) + ")");
        };
    }

    static double defaultLr(String name) {
        return switch (name) {
            case "lion" -> Lion.DEFAULT_LR;
            case "sophia" -> SophiaG.DEFAULT_LR;
            default -> 1e-3;
        };
    }

    /** Builds the model, trains {@link #STEPS} steps with optimizer {@code name} and measures. */
    static Result measure(String name) {
        // all op threads to each op, so the optimizer updates its parameters one after the other on this thread
        // and its scratch workspace is the one measured here
        Backends.configure(Runtime.getRuntime().availableProcessors());
        Nd4j.create(DataType.FLOAT, 4).addi(1); // initialise ND4J before the baseline
        long baseline = Memory.residentBytes();
        Nd4j.getRandom().setSeed(1);
        DecoderForCausalLM model = new DecoderForCausalLM(modelConfig(), DataType.FLOAT);
        Optimizer opt = create(name, model.namedParameters());
        long afterModel = Memory.residentBytes();
        long peakAfterModel = Memory.peakResidentBytes();
        System.err.printf(Locale.ROOT, "%s: heap committed %.0f MiB%n", name, mib(Runtime.getRuntime().totalMemory()));
        System.err.printf(Locale.ROOT, "%s: RSS %.0f MiB before the model, %.0f MiB after it (peak %.0f MiB)%n", name,
                mib(baseline), mib(afterModel), mib(peakAfterModel));
        Random r = new Random(7);
        List<Sample> rows = new ArrayList<>();
        for (int i = 0; i < STEPS; i++) {
            int[] ids = new int[SEQ];
            for (int t = 0; t < SEQ; t++) {
                ids[t] = r.nextInt(32000);
            }
            rows.add(Sample.causal(ids));
        }
        Dataset data = Datasets.of(rows);
        Trainer trainer = Trainer.builder().model(model).optimizer(opt)
                .config(CollieConfig.builder().trainMicroBatchSize(1).shuffle(false).maxSteps(STEPS)
                        .lr(defaultLr(name)).build())
                .trainData(data).callbacks(new Callback() {
                    @Override
                    public void onBatchEnd(Trainer t, StepStats st) {
                        System.err.printf(Locale.ROOT, "%s: step %d RSS %.0f MiB, peak %.0f MiB, heap %.0f MiB%n", name,
                                st.step(), mib(st.residentBytes()), mib(st.peakResidentBytes()),
                                mib(Runtime.getRuntime().totalMemory()));
                    }
                }).build();
        long t0 = System.nanoTime();
        trainer.train();
        double sec = (System.nanoTime() - t0) / 1e9 / STEPS;
        Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        long params = 0;
        long paramBytes = 0;
        long gradBytes = 0;
        for (Parameter p : model.parameters()) {
            if (seen.add(p)) {
                params += p.numel();
                paramBytes += p.numel() * p.dtype().width();
                gradBytes += p.gradientBufferBytes();
            }
        }
        long act = Workspaces.size("collie-micro-batch") + Workspaces.size("collie-scratch");
        long optScratch = Workspaces.size("collie-optimizer") + Workspaces.size("collie-sophia");
        return new Result(name, params, paramBytes, gradBytes, opt.stateBytes(), act, optScratch, baseline,
                Memory.peakResidentBytes(), sec);
    }

    /** Runs {@code --one name} in a new JVM with this JVM's class path and options. */
    static Result fork(String name) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.add("-XX:+UseSerialGC"); // a heap that grows only as needed: JVM heap pages are not optimizer memory
        // a small young generation: collie's tensors live off-heap and each step leaves ~13 MiB of small Java
        // objects (op descriptors, shape arrays); with the default eden (a third of the heap) every step touches
        // fresh heap pages until the eden is full, so peak RSS would grow with the number of steps measured
        cmd.add("-Xmn32m");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(OptimizerMemoryBench.class.getName());
        cmd.add("--one");
        cmd.add(name);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        // a fixed mmap threshold: glibc then returns every freed buffer over 128 KiB to the kernel at once, so RSS
        // counts live memory; with its default dynamic threshold freed gradient buffers of a few MiB stay
        // resident in malloc's arena and the peak RSS of LOMO grows by some 400 MiB of free memory
        pb.environment().putIfAbsent("MALLOC_MMAP_THRESHOLD_", "131072");
        Process p = pb.start();
        Result result = null;
        StringBuilder out = new StringBuilder();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) {
                out.append(line).append('\n');
                if (line.startsWith("RESULT ")) {
                    result = Result.parse(line);
                }
            }
        }
        int code = p.waitFor();
        if (code != 0 || result == null) {
            throw new CollieException("measuring " + name + " failed (exit " + code + "):\n" + out);
        }
        System.err.printf(Locale.ROOT, "%s: %.2f bytes/parameter, peak RSS %.0f MiB%n", name, result.bytesPerParam(),
                result.peakRss() / 1048576.0);
        return result;
    }

    private static double mib(long b) {
        return b / 1048576.0;
    }

    static String table(List<Result> results) {
        Result first = results.get(0);
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "LLaMA %,d parameters (%.0f MiB fp32), %d Trainer steps of 1×%d tokens,"
                + " one JVM per optimizer (serial GC, 32 MiB young generation, MALLOC_MMAP_THRESHOLD_=131072), %d cores.%n%n", first.params(),
                mib(first.paramBytes()), STEPS, SEQ, Runtime.getRuntime().availableProcessors()));
        sb.append("| optimizer | bytes/param (params + grads + state) | goal | gradients held | state | activation"
                + " workspaces | optimizer scratch | peak RSS | peak RSS − baseline | RSS ratio: (peak − baseline) /"
                + " (params + activations) | s/step |\n");
        sb.append("|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (Result r : results) {
            double overhead = (r.peakRss() - r.baselineRss()) / (double) (r.paramBytes() + r.activationBytes());
            sb.append(String.format(Locale.ROOT,
                    "| %s | %.2f | %s | %.0f MiB | %.1f MiB | %.0f MiB | %.0f MiB | %.0f MiB | %.0f MiB | %.2f | %.2f |%n",
                    r.name(), r.bytesPerParam(), GOALS.get(r.name()), mib(r.gradBytes()), mib(r.stateBytes()),
                    mib(r.activationBytes()), mib(r.optimizerScratchBytes()), mib(r.peakRss()),
                    mib(r.peakRss() - r.baselineRss()), overhead, r.secondsPerStep()));
        }
        return sb.toString();
    }

    static void plot(List<Result> results, Path png) throws IOException {
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
        CategoryChart chart = new CategoryChartBuilder().width(900).height(520)
                .title(String.format(Locale.ROOT, "Memory per parameter, LLaMA %.0fM, fp32",
                        results.get(0).params() / 1e6))
                .xAxisTitle("optimizer").yAxisTitle("bytes per trainable parameter").build();
        chart.getStyler().setStacked(true);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        chart.getStyler().setLegendLayout(Styler.LegendLayout.Horizontal);
        chart.getStyler().setSeriesColors(new Color[] {new Color(70, 110, 170), new Color(220, 140, 50),
            new Color(90, 160, 90), new Color(170, 170, 170)});
        List<String> names = new ArrayList<>();
        List<Double> params = new ArrayList<>();
        List<Double> grads = new ArrayList<>();
        List<Double> state = new ArrayList<>();
        List<Double> rest = new ArrayList<>();
        for (Result r : results) {
            names.add(r.name());
            params.add(r.paramBytes() / (double) r.params());
            grads.add(r.gradBytes() / (double) r.params());
            state.add(r.stateBytes() / (double) r.params());
            double other = (r.peakRss() - r.baselineRss() - r.paramBytes() - r.gradBytes() - r.stateBytes())
                    / (double) r.params();
            rest.add(Math.max(0, other));
        }
        chart.addSeries("parameters", names, params);
        chart.addSeries("gradient buffers", names, grads);
        chart.addSeries("optimizer state", names, state);
        chart.addSeries("rest of peak RSS − baseline (activations, scratch)", names, rest);
        Files.createDirectories(png.toAbsolutePath().getParent());
        BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    /**
     * Replaces the text between the lines {@code <!-- NAME:begin -->} and {@code <!-- NAME:end -->} of a
     * Markdown file with {@code body}.
     */
    static void replaceRegion(Path doc, String name, String body) throws IOException {
        String text = Files.readString(doc);
        String begin = "<!-- " + name + ":begin -->\n";
        String end = "<!-- " + name + ":end -->";
        int a = text.indexOf(begin);
        int b = text.indexOf(end);
        if (a < 0 || b < a) {
            throw new CollieException(doc + " has no " + begin.trim() + " ... " + end + " region");
        }
        Files.writeString(doc, text.substring(0, a + begin.length()) + body + text.substring(b));
    }
}
