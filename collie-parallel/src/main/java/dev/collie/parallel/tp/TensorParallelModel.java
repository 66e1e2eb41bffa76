package dev.collie.parallel.tp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.train.ForwardingLanguageModel;
import dev.collie.core.train.LanguageModel;

/**
 * A model after {@link TensorParallel#apply}: the same model object (its module tree now holds this rank's
 * shards), whose logits are this rank's vocabulary shard {@code [batch·seq, V/n]}, so its {@link #loss()} is a
 * {@link VocabParallelLoss}. Everything else is the model's; {@link #vocabSize()} stays the whole vocabulary's size.
 */
public final class TensorParallelModel extends ForwardingLanguageModel {
    private final Communicator tp;
    private final VocabParallelLoss loss;

    TensorParallelModel(LanguageModel base, Communicator tp) {
        super(base);
        this.tp = tp;
        this.loss = new VocabParallelLoss(tp, base.vocabSize());
    }

    /** The model whose modules were replaced (e.g. the {@code DecoderForCausalLM}). */
    public LanguageModel base() {
        return delegate();
    }

    /** The tensor-parallel group. */
    public Communicator communicator() {
        return tp;
    }

    /** Cross-entropy over the vocabulary shards ({@link VocabParallelLoss}); one object, reused. */
    @Override
    public CausalLmLoss loss() {
        return loss;
    }

    @Override
    public String toString() {
        return "TensorParallel(" + delegate().getClass().getSimpleName() + ", rank " + tp.rank() + " of " + tp.size()
                + ")";
    }
}
