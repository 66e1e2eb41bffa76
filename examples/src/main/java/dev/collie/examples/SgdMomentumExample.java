package dev.collie.examples;

import dev.collie.core.CollieException;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.PackedTextDataset;
import dev.collie.core.tensor.Backends;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.LossHistory;
import dev.collie.core.train.ProgressBar;
import dev.collie.core.train.Trainer;
import dev.collie.examples.cli.Presets;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.HfTokenizer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

/**
 * The optimizer SPI end to end: {@link SgdMomentum}, a dozen lines extending
 * {@link dev.collie.core.optim.PerParameterOptimizer}, trains the {@code tiny} LLaMA preset on the bundled
 * Moby-Dick text through the Trainer, and the evaluation loss falls.
 *
 * <pre>java -cp examples/target/collie.jar dev.collie.examples.SgdMomentumExample [--steps N] [--lr LR]</pre>
 *
 * The same class from the command line: {@code collie train --preset tiny --optimizer
 * dev.collie.examples.SgdMomentum --lr 0.3 ...}.
 */
public final class SgdMomentumExample {
    private SgdMomentumExample() {
    }

    public static void main(String[] args) {
        Backends.configure(Runtime.getRuntime().availableProcessors());
        long steps = 200;
        double lr = 0.3;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--steps" -> steps = Long.parseLong(args[i + 1]);
                case "--lr" -> lr = Double.parseDouble(args[i + 1]);
                default -> throw new CollieException("usage: SgdMomentumExample [--steps N] [--lr LR]");
            }
        }
        Path data = Files.isDirectory(Path.of("examples", "data")) ? Path.of("examples", "data") : Path.of("data");
        try (HfTokenizer tok = HfTokenizer.load(data.resolve("tokenizer"))) {
            PackedTextDataset text = PackedTextDataset.load(data.resolve("moby-dick.txt"), tok, 64, tok.vocabSize());
            Datasets.Split split = Datasets.split(text, 0.02, 1);
            Nd4j.getRandom().setSeed(1);
            DecoderForCausalLM model = new DecoderForCausalLM(Presets.get("tiny", tok.vocabSize()), DataType.FLOAT);
            SgdMomentum optimizer = new SgdMomentum(model.namedParameters(), 0.9);
            LossHistory history = new LossHistory();
            Trainer trainer = Trainer.builder().model(model).optimizer(optimizer)
                    .config(CollieConfig.builder().seed(1).trainEpochs(1000).maxSteps(steps).trainMicroBatchSize(4)
                            .evalBatchSize(16).lr(lr).lrSchedule("cosine").warmupSteps(steps / 10).build())
                    .trainData(split.train()).evalData(split.eval()).padId(tok.padId())
                    .callbacks(new ProgressBar(System.out, System.console() != null, 25), history).build();
            Map<String, Double> before = trainer.evaluate();
            trainer.train();
            Map<String, Double> after = trainer.evaluate();
            System.out.printf(Locale.ROOT, "SgdMomentum (a user-written PerParameterOptimizer), %d steps at lr %.3g:"
                    + " eval loss %.4f -> %.4f; optimizer state %.1f KiB%n", steps, lr, before.get("loss"),
                    after.get("loss"), optimizer.stateBytes() / 1024.0);
        }
    }
}
