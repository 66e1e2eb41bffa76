package dev.collie.parallel.tp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.dist.Sharding;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The output head over a vocabulary shard: rank r of n computes the logits of token ids
 * {@code [r·V/n, (r+1)·V/n)} only, {@code [rows, V/n]}, which are never gathered ({@link VocabParallelLoss}
 * works on them as they are). Made from an untied {@code lm_head} (its weight's rows sliced), or over the
 * shard parameter of a {@link VocabParallelEmbedding} (tied word embeddings: the parameter is used twice
 * per forward and its hook fires once, after both contributions). Backward delivers the local weight
 * gradient and sums the partial input gradients over the ranks (one all-reduce of {@code [rows, hidden]}).
 */
public final class VocabParallelHead extends Module implements Layer {
    private final Parameter weight;
    private final Parameter bias;
    private final Communicator tp;
    private final long vocabSize;

    /** This rank's rows of an untied head {@code [V, hidden]} (and of its bias, if any). */
    public VocabParallelHead(Linear full, Communicator tp) {
        Shards.requireDivisible("vocab_size", full.outFeatures(), tp.size());
        this.tp = tp;
        this.vocabSize = full.outFeatures();
        this.weight = registerParameter("weight", Shards.shardParameter(full.weight(), ParallelStyle.VOCAB, tp.rank(), tp.size()));
        this.bias = full.bias() == null ? null
                : registerParameter("bias", Shards.shardParameter(full.bias(), ParallelStyle.VOCAB, tp.rank(), tp.size()));
        weight.setSharding(new Sharding(ParallelStyle.VOCAB, tp));      // rows of the vocabulary, as the bias
        if (bias != null) {
            bias.setSharding(new Sharding(ParallelStyle.VOCAB, tp));
        }
    }

    /** A bias-free head over an existing shard {@code [V/n, hidden]} (the tied embedding's). */
    VocabParallelHead(Parameter shard, long vocabSize, Communicator tp) {
        this.tp = tp;
        this.vocabSize = vocabSize;
        this.weight = registerParameter("weight", shard);
        this.bias = null;
    }

    public Parameter weight() {
        return weight;
    }

    /** This rank's share of the bias, or null. */
    public Parameter bias() {
        return bias;
    }

    /** The whole vocabulary's size V. */
    public long vocabSize() {
        return vocabSize;
    }

    /** The first token id of this rank's shard. */
    public long vocabStart() {
        return tp.rank() * localVocabSize();
    }

    /** V/n. */
    public long localVocabSize() {
        return weight.shape()[0];
    }

    /** Local logits {@code [rows, V/n]}. */
    @Override
    public INDArray forward(Tape tape, INDArray x) {
        return Linear.project(tape, this, x, weight, bias);
    }

    /** The whole input gradient (summed over the ranks) for the gradient of the local logits. */
    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        // the local input gradient is computed before the weight's hook fires (a fused optimizer updates it there)
        return Shards.allReduceSum(tp, Linear.projectBackward(tape, this, dy, weight, bias));
    }
}
