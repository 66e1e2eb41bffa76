package dev.collie.core.testing;

import dev.collie.core.data.Batch;
import dev.collie.core.data.Dataset;
import dev.collie.core.data.Datasets;
import dev.collie.core.data.Sample;
import dev.collie.core.nn.Embedding;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Tape;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The smallest {@link LanguageModel} for testing the Trainer without a real model: token embedding, then a linear
 * head to the vocabulary (a bigram model), the same weights for the same seed.
 */
public final class ToyLanguageModel extends Module implements LanguageModel {
    private final long vocab;

    public ToyLanguageModel(int vocab, int dim, DataType dtype, long seed) {
        this.vocab = vocab;
        Nd4j.getRandom().setSeed(seed);
        registerModule("embed", new Embedding(vocab, dim, dtype, 0.5));
        registerModule("head", new Linear(dim, vocab, true, dtype, 0.5));
    }

    @Override
    public Module module() {
        return this;
    }

    @Override
    public INDArray forward(Tape tape, INDArray inputIds) {
        return layer("head").forward(tape, layer("embed").forward(tape, inputIds));
    }

    @Override
    public void backward(Tape tape, INDArray dLogits) {
        layer("embed").backward(tape, layer("head").backward(tape, dLogits));
    }

    @Override
    public long vocabSize() {
        return vocab;
    }

    /** The head is what activation checkpointing recomputes here. */
    @Override
    public List<String> recomputePlan() {
        return List.of("head");
    }

    @Override
    public List<Layer> pipelineLayers() {
        return List.of(layer("embed"), layer("head"));
    }

    /** {@code count} rows of {@code length} random tokens below {@code vocab} (0: 4 to 12 of them), from {@code seed}. */
    public static Dataset rows(int count, int length, int vocab, long seed) {
        Random r = new Random(seed);
        List<Sample> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int[] ids = new int[length > 0 ? length : 4 + r.nextInt(9)];
            for (int j = 0; j < ids.length; j++) {
                ids[j] = r.nextInt(vocab);
            }
            out.add(Sample.causal(ids));
        }
        return Datasets.of(out);
    }

    /**
     * A batch of {@code rows} × {@code length} random tokens below {@code vocab} from {@code seed} (row by row),
     * labelled with themselves, every position counted.
     */
    public static Batch randomBatch(int rows, int length, int vocab, long seed) {
        Random r = new Random(seed);
        long[][] ids = new long[rows][length];
        for (long[] row : ids) {
            for (int i = 0; i < row.length; i++) {
                row[i] = r.nextInt(vocab);
            }
        }
        INDArray x = Nd4j.createFromArray(ids);
        return new Batch(x, x, Nd4j.onesLike(x));
    }
}
