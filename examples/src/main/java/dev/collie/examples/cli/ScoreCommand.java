package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.nn.Tape;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.HfTokenizer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code collie score}: the mean next-token loss (and perplexity) of one sequence under a model. */
@Command(name = "score", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Print the mean next-token loss and perplexity of a token sequence or a text.",
            "The loss is Hugging Face's causal-LM loss: model(ids, labels=ids).loss."})
final class ScoreCommand implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR", required = true, description = "Hugging Face model directory")
    Path model;
    @Option(names = "--ids", paramLabel = "1,2,3", description = "token ids, separated by commas") String ids;
    @Option(names = "--text", paramLabel = "TEXT", description = "text, tokenized with special tokens (e.g. BOS)")
    String text;
    @Option(names = "--tokenizer", paramLabel = "DIR",
            description = "tokenizer.json or its directory (default: the model directory)")
    Path tokenizerPath;
    @CommandLine.Mixin AdapterOptions adapter;
    @Option(names = "--dump-logits", paramLabel = "FILE.safetensors",
            description = "write the float32 logits [seq, vocab] as tensor 'logits'")
    Path dumpLogits;

    @Override
    public Integer call() {
        if ((ids == null) == (text == null)) {
            throw new CollieException("give either --ids 1,2,3 or --text \"...\" (exactly one)");
        }
        if (dumpLogits != null) {
            CliSupport.outputFile("--dump-logits", dumpLogits);
        }
        DecoderForCausalLM net = CliSupport.loadModel(model);
        long vocab = net.config().vocabSize();
        int[] tokens;
        if (ids != null) {
            tokens = CliSupport.parseIds(ids, vocab);
        } else {
            HfTokenizer tok = CliSupport.tokenizer(tokenizerPath, model);
            if (tok == null) {
                throw new CollieException("--text needs a tokenizer: " + model + " has no tokenizer.json;"
                        + " give --tokenizer DIR or use --ids");
            }
            try {
                CliSupport.requireTokenizerFits(tok, net.config(), model);
                tokens = tok.encode(text, true);
            } finally {
                tok.close();
            }
            for (int id : tokens) {
                if (id >= vocab) {
                    throw new CollieException("the tokenizer produced token id " + id
                            + ", outside the model's vocabulary [0, " + vocab + ")");
                }
            }
        }
        if (tokens.length < 2) {
            throw new CollieException("a loss needs at least 2 tokens, got " + tokens.length);
        }
        CliSupport.requireStepMemory(net.config(), 1, tokens.length, 1, false, "score a shorter sequence");
        long[] row = new long[tokens.length];
        for (int i = 0; i < row.length; i++) {
            row[i] = tokens[i];
        }
        INDArray input = Nd4j.createFromArray(new long[][] {row});
        Tape tape = Tape.forInference(1, tokens.length);
        LanguageModel lm = adapter.apply(net);
        INDArray logits = lm.forward(tape, input);
        double loss = new CausalLmLoss().forward(tape, logits, AdapterOptions.labels(lm, input));
        System.out.printf(Locale.ROOT, "tokens: %d%n", tokens.length);
        System.out.printf(Locale.ROOT, "loss: %.6f%n", loss);
        System.out.printf(Locale.ROOT, "perplexity: %.4f%n", Math.exp(loss));
        if (dumpLogits != null) {
            writeLogits(logits);
            System.out.println("logits [" + logits.size(0) + ", " + vocab + "] written to " + dumpLogits);
        }
        return 0;
    }

    private void writeLogits(INDArray logits) {
        try {
            Path dir = dumpLogits.toAbsolutePath().getParent();
            if (dir != null) {
                Files.createDirectories(dir);
            }
        } catch (IOException e) {
            throw new CollieException("--dump-logits: cannot create the directory of " + dumpLogits + ": " + e, e);
        }
        INDArray f = logits.dataType() == DataType.FLOAT ? logits : logits.castTo(DataType.FLOAT);
        SafeTensors.write(dumpLogits, Map.of("logits", f), Map.of());
    }
}
