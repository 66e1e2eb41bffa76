package dev.collie.examples;

import dev.collie.core.CollieException;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.PackedTextDataset;
import dev.collie.core.io.AtomicFiles;
import dev.collie.core.tensor.Backends;
import dev.collie.core.train.CheckpointCallback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.LossHistory;
import dev.collie.core.train.ProgressBar;
import dev.collie.core.train.TrackedMetric;
import dev.collie.core.train.Trainer;
import dev.collie.core.train.monitor.Monitor;
import dev.collie.core.train.monitor.MonitorConfig;
import dev.collie.examples.cli.LossCurve;
import dev.collie.examples.cli.Presets;
import dev.collie.models.generation.Generator;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.HfTokenizer;
import dev.collie.optim.AdamW;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;

/**
 * The default example: trains a small LLaMA (preset {@code small}: hidden 256, 4 layers, ~5M parameters with the
 * 4096-token vocabulary) from scratch on the bundled Moby-Dick text, in a few minutes on a laptop CPU.
 *
 * <pre>java -cp examples/target/collie.jar dev.collie.examples.TrainMobyDick [--steps N] [--out DIR]</pre>
 *
 * Rows of 128 tokens, 5% held out; AdamW at 1e-3 with warm-up and cosine decay, 8 rows a step; evaluation
 * perplexity every 50 steps. Writes {@code runs/moby-dick/loss.png}, the monitor's figures ({@code monitor/}: CSV,
 * JSONL, TensorBoard events and a PNG dashboard), the two best checkpoints by evaluation loss ({@code checkpoints/})
 * and the model (a Hugging Face directory) to {@code runs/moby-dick/model}, then prints a sample continuing
 * "Call me Ishmael."
 */
public final class TrainMobyDick {
    private static final int SEQ = 128;
    private static final int MICRO_BATCH = 8;
    private static final long SEED = 1;

    private TrainMobyDick() {
    }

    public static void main(String[] args) {
        Backends.configure(Runtime.getRuntime().availableProcessors());
        try {
            run(args);
        } catch (CollieException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(2);
        }
    }

    private static void run(String[] args) {
        long steps = 1000;
        Path out = Path.of("runs", "moby-dick");
        Path data = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) {
                throw new CollieException("usage: TrainMobyDick [--steps N] [--out DIR] [--data DIR]; '" + a
                        + "' needs a value");
            }
            switch (a) {
                case "--steps" -> steps = parseSteps(args[++i]);
                case "--out" -> out = Path.of(args[++i]);
                case "--data" -> data = Path.of(args[++i]);
                default -> throw new CollieException("usage: TrainMobyDick [--steps N] [--out DIR] [--data DIR];"
                        + " unknown option " + a);
            }
        }
        if (data == null) {
            // run from the repository root (examples/data) or from the examples module (data)
            data = Files.isDirectory(Path.of("examples", "data")) ? Path.of("examples", "data") : Path.of("data");
        }
        long started = System.nanoTime();

        HfTokenizer tok = HfTokenizer.load(data.resolve("tokenizer"));
        PackedTextDataset text = PackedTextDataset.load(data.resolve("moby-dick.txt"), tok, SEQ, tok.vocabSize());
        Datasets.Split split = Datasets.split(text, 0.05, SEED);

        DecoderConfig cfg = Presets.builder("small", tok.vocabSize()).bosTokenId(tok.bosId().getAsInt())
                .eosTokenIds(tok.eosId().getAsInt()).build();
        Nd4j.getRandom().setSeed(SEED);
        DecoderForCausalLM model = new DecoderForCausalLM(cfg, DataType.FLOAT);
        System.out.printf(Locale.ROOT, "model: LLaMA hidden %d, %d layers, %d heads, vocab %d: %,d parameters%n",
                cfg.hiddenSize(), cfg.numHiddenLayers(), cfg.numAttentionHeads(), cfg.vocabSize(),
                model.parameterCount());
        System.out.printf(Locale.ROOT, "data: %d rows of %d tokens for training, %d for evaluation%n",
                split.train().size(), SEQ, split.eval().size());

        CollieConfig config = CollieConfig.builder().seed(SEED).trainEpochs(1000).maxSteps(steps)
                .trainMicroBatchSize(MICRO_BATCH).evalBatchSize(16).evalPerNSteps(50).lr(1e-3).lrSchedule("cosine")
                .warmupSteps(Math.min(100, steps / 10)).clipGradNorm(1.0).build();
        LossHistory history = new LossHistory();
        Path monitorDir = out.resolve("monitor");
        Path checkpoints = out.resolve("checkpoints");
        // a run from scratch: the figures and checkpoints of an earlier run would mix with this one's
        for (Path old : List.of(monitorDir, checkpoints)) {
            try {
                AtomicFiles.deleteTree(old);
            } catch (IOException e) {
                throw new CollieException("cannot clear " + old + " of an earlier run: " + e.getMessage(), e);
            }
        }
        Trainer trainer = Trainer.builder().model(model)
                .optimizer(new AdamW(model.namedParameters(), 0.9, 0.95, 1e-8, 0.01)).config(config)
                .trainData(split.train()).evalData(split.eval()).padId(tok.padId())
                .callbacks(new ProgressBar(System.out, System.console() != null, 25), history,
                        // loss, lr, TGS, tokens/s, grad norm, memory and the evaluations: CSV, JSONL, TensorBoard, PNG
                        new Monitor(MonitorConfig.all(monitorDir).validate(), null),
                        // the best two evaluations by loss, as resumable checkpoints
                        CheckpointCallback.builder(checkpoints).topK(2, TrackedMetric.min("loss")).build())
                .build();
        trainer.train();
        if (trainer.globalStep() % config.evalPerNSteps() != 0) {
            trainer.evaluate();
        }
        double trainSeconds = (System.nanoTime() - started) / 1e9;

        Path png = out.resolve("loss.png");
        LossCurve.write(history, png, "LLaMA " + model.parameterCount() / 100_000 / 10.0 + "M on Moby-Dick");
        Path modelDir = out.resolve("model");
        DecoderCheckpoint.save(model, modelDir);
        copyTokenizer(data.resolve("tokenizer"), modelDir);

        LossHistory.Step first = history.steps().get(0);
        LossHistory.Eval eval = history.lastEval();
        System.out.printf(Locale.ROOT, "train loss: %.4f at step 1 -> %.4f at step %d%n", first.loss(),
                history.lastLoss(), trainer.globalStep());
        System.out.printf(Locale.ROOT, "eval loss: %.4f, perplexity %.2f%n", eval.loss(), eval.ppl());
        System.out.println("loss curve: " + png);
        System.out.println("monitor: " + monitorDir + " (metrics.csv, metrics.jsonl, TensorBoard events, "
                + MonitorConfig.DASHBOARD + ")");
        System.out.println("best checkpoints by eval loss: " + listing(checkpoints));
        System.out.println("model: " + modelDir);

        String prompt = "Call me Ishmael.";
        int[] ids = tok.encode(prompt, true);
        // no stop at EOS: the model ends paragraphs early, so the sample runs on and EOS becomes a paragraph break
        Generator.Options options = Generator.Options.builder().maxNewTokens(60).temperature(0.8).topP(0.95)
                .seed(SEED).padId(tok.padId()).build();
        int[] gen = new Generator(model).generate(ids, options);
        int[] all = IntStream.concat(Arrays.stream(ids), Arrays.stream(gen)).toArray();
        System.out.println("sample (60 tokens, temperature 0.8, top-p 0.95):");
        System.out.println(decodeParagraphs(tok, all));
        System.out.printf(Locale.ROOT, "done in %.1f s%n", (System.nanoTime() - started) / 1e9);
        System.out.printf(Locale.ROOT, "(training and evaluation: %.1f s)%n", trainSeconds);
        tok.close();
    }

    /** The names in {@code dir}, sorted, comma-separated. */
    private static String listing(Path dir) {
        try (var files = Files.list(dir)) {
            return String.join(", ", files.map(f -> f.getFileName().toString()).sorted().toList());
        } catch (IOException e) {
            return "(cannot list " + dir + ": " + e.getMessage() + ")";
        }
    }

    /** Decodes {@code ids}, starting a new paragraph at each EOS. */
    static String decodeParagraphs(HfTokenizer tok, int[] ids) {
        int eos = tok.eosId().orElse(-1);
        StringBuilder sb = new StringBuilder();
        int from = 0;
        for (int i = 0; i <= ids.length; i++) {
            if (i == ids.length || ids[i] == eos) {
                String part = tok.decode(Arrays.copyOfRange(ids, from, i), true).strip();
                if (!part.isEmpty()) {
                    sb.append(sb.length() > 0 ? "\n\n" : "").append(part);
                }
                from = i + 1;
            }
        }
        return sb.toString();
    }

    private static long parseSteps(String v) {
        try {
            long n = Long.parseLong(v);
            if (n > 0) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new CollieException("--steps must be a positive integer, got '" + v + "'");
    }

    private static void copyTokenizer(Path from, Path to) {
        try (var files = Files.list(from)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (Files.isRegularFile(f)) {
                    Files.copy(f, to.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        } catch (IOException e) {
            throw new CollieException("cannot copy the tokenizer to " + to + ": " + e.getMessage(), e);
        }
    }
}
