package dev.collie.examples;

import dev.collie.core.CollieException;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.PackedTextDataset;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.tensor.Backends;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.LossHistory;
import dev.collie.core.train.Trainer;
import dev.collie.examples.cli.Presets;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.HfTokenizer;
import dev.collie.optim.SophiaG;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Convergence sanity check of every optimizer at its documented default learning rate (constant, no warm-up,
 * no clipping): the {@code small} LLaMA preset (hidden 256, 4 layers) from the same random start, trained on
 * the bundled Moby-Dick text for 300 steps of 4 rows × 64 tokens, validation loss on 2% held-out rows every 100
 * steps.
 *
 * <pre>java -cp examples/target/collie.jar dev.collie.examples.OptimizerConvergence [--steps N] [--doc FILE] [--png FILE]</pre>
 *
 * Prints a Markdown table of initial and final validation losses, writes it between the
 * {@code convergence-table} markers of {@code docs/optimizers.md} and the curves to
 * {@code docs/optimizer-convergence.png}.
 */
public final class OptimizerConvergence {
    private static final int SEQ = 64;
    private static final int MICRO_BATCH = 4;
    private static final long SEED = 1;

    private OptimizerConvergence() {
    }

    public static void main(String[] args) throws Exception {
        long steps = 300;
        Path doc = Path.of("docs", "optimizers.md");
        Path png = Path.of("docs", "optimizer-convergence.png");
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--steps" -> steps = Long.parseLong(args[i + 1]);
                case "--doc" -> doc = Path.of(args[i + 1]);
                case "--png" -> png = Path.of(args[i + 1]);
                default -> throw new CollieException("usage: OptimizerConvergence [--steps N] [--doc FILE] [--png FILE]");
            }
        }
        Backends.configure(1);
        Path data = Files.isDirectory(Path.of("examples", "data")) ? Path.of("examples", "data") : Path.of("data");
        StringBuilder table = new StringBuilder();
        List<double[][]> curves = new ArrayList<>();
        try (HfTokenizer tok = HfTokenizer.load(data.resolve("tokenizer"))) {
            PackedTextDataset text = PackedTextDataset.load(data.resolve("moby-dick.txt"), tok, SEQ, tok.vocabSize());
            Datasets.Split split = Datasets.split(text, 0.02, SEED);
            DecoderConfig cfg = Presets.get("small", tok.vocabSize());
            table.append(String.format(Locale.ROOT, "Preset `small` (%s), %d steps of %d×%d tokens, constant default"
                    + " lr, no clipping; validation: %d held-out rows of %d tokens.%n%n",
                    String.format(Locale.ROOT, "%.1fM parameters", paramCount(cfg) / 1e6), steps, MICRO_BATCH, SEQ,
                    split.eval().size(), SEQ));
            table.append("| optimizer | lr | val loss at step 0 | val loss at step ").append(steps)
                    .append(" | change | train loss, last 20 steps | s/step |\n|---|---|---|---|---|---|---|\n");
            for (String name : OptimizerMemoryBench.OPTIMIZERS) {
                Nd4j.getRandom().setSeed(SEED);
                DecoderForCausalLM model = new DecoderForCausalLM(cfg, DataType.FLOAT);
                // Sophia with its default Hessian interval of 10 (the memory bench uses 2 to refresh within 3 steps)
                Optimizer opt = name.equals("sophia") ? new SophiaG(model.namedParameters())
                        : OptimizerMemoryBench.create(name, model.namedParameters());
                double lr = OptimizerMemoryBench.defaultLr(name);
                LossHistory history = new LossHistory();
                Trainer trainer = Trainer.builder().model(model).optimizer(opt)
                        .config(CollieConfig.builder().seed(SEED).trainEpochs(1000).maxSteps(steps)
                                .trainMicroBatchSize(MICRO_BATCH).evalBatchSize(16).evalPerNSteps(100).lr(lr).build())
                        .trainData(split.train()).evalData(split.eval()).padId(tok.padId()).callbacks(history).build();
                double initial = trainer.evaluate().get("loss");
                long t0 = System.nanoTime();
                trainer.train();
                double sec = (System.nanoTime() - t0) / 1e9 / steps;   // with the evaluations every 100 steps
                if (trainer.globalStep() % 100 != 0) {
                    trainer.evaluate();
                }
                double last = history.lastEval().loss();
                List<LossHistory.Step> st = history.steps();
                double tail = st.subList(Math.max(0, st.size() - 20), st.size()).stream()
                        .mapToDouble(LossHistory.Step::loss).average().orElse(Double.NaN);
                table.append(String.format(Locale.ROOT, "| %s | %.0e | %.4f | %.4f | %+.4f | %.4f | %.3f |%n", name, lr,
                        initial, last, last - initial, tail, sec));
                List<LossHistory.Eval> ev = history.evals();
                double[][] c = new double[2][ev.size()];   // the first is the evaluation before training
                for (int i = 0; i < ev.size(); i++) {
                    c[0][i] = ev.get(i).step();
                    c[1][i] = ev.get(i).loss();
                }
                curves.add(c);
                System.err.printf(Locale.ROOT, "%s: %.4f -> %.4f%n", name, initial, last);
            }
        }
        System.out.print(table);
        plot(curves, png);
        System.out.println("plot: " + png);
        if (Files.isRegularFile(doc)) {
            OptimizerMemoryBench.replaceRegion(doc, "convergence-table", table.toString());
            System.out.println("table written into " + doc);
        }
    }

    private static long paramCount(DecoderConfig c) {
        long h = c.hiddenSize();
        long perLayer = 2 * h * c.numAttentionHeads() * c.headDim() + 2 * h * c.numKeyValueHeads() * c.headDim()
                + 3 * h * c.intermediateSize() + 2 * h;
        return perLayer * c.numHiddenLayers() + 2L * c.vocabSize() * h + h;
    }

    private static void plot(List<double[][]> curves, Path png) throws IOException {
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
        XYChart chart = new XYChartBuilder().width(900).height(520).title("Validation loss, preset small on Moby-Dick")
                .xAxisTitle("step").yAxisTitle("validation loss").build();
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        for (int i = 0; i < curves.size(); i++) {
            chart.addSeries(OptimizerMemoryBench.OPTIMIZERS.get(i), curves.get(i)[0], curves.get(i)[1]);
        }
        Files.createDirectories(png.toAbsolutePath().getParent());
        BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    }
}
