package dev.collie.parallel.tp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.dist.Sharding;
import dev.collie.core.nn.Embedding;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.nn.TiedEmbedding;
import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * An embedding whose table is split over the vocabulary: rank r of n keeps rows {@code [r·V/n, (r+1)·V/n)}
 * of the {@code [V, dim]} table under the name {@code weight}. Forward looks up the ids that fall in this
 * rank's rows, puts zeros for the others and sums over the ranks (one all-reduce of {@code [n, dim]}), so
 * every rank gets every row; backward scatter-adds the (replicated) output gradient into this rank's rows
 * only, with no communication. Ids are checked against the whole vocabulary.
 * {@link #outputHead()} is the tied output head over the same shard.
 */
public final class VocabParallelEmbedding extends Module implements TiedEmbedding {
    private final Parameter weight;
    private final long vocabSize;
    private final long start;
    private final Communicator tp;
    private final VocabParallelHead head;

    /** Ids of this rank's rows (local numbering) and, when some ids lie elsewhere, which output rows they are. */
    private record Saved(INDArray localIds, INDArray rows) {
    }

    public VocabParallelEmbedding(Embedding full, Communicator tp) {
        Shards.requireDivisible("vocab_size", full.vocabSize(), tp.size());
        this.tp = tp;
        this.vocabSize = full.vocabSize();
        this.weight = registerParameter("weight", Shards.shardParameter(full.weight(), ParallelStyle.VOCAB, tp.rank(), tp.size()));
        weight.setSharding(new Sharding(ParallelStyle.VOCAB, tp));      // rows of the vocabulary
        this.start = tp.rank() * weight.shape()[0];
        this.head = new VocabParallelHead(weight, vocabSize, tp);
    }

    /** The output head over this shard (logits of this rank's token ids); the same object on every call. */
    @Override
    public Layer outputHead() {
        return head;
    }

    /** This rank's rows {@code [V/n, dim]}. */
    public Parameter weight() {
        return weight;
    }

    /** The whole vocabulary's size V. */
    public long vocabSize() {
        return vocabSize;
    }

    /** The first token id of this rank's rows. */
    public long vocabStart() {
        return start;
    }

    public long localVocabSize() {
        return weight.shape()[0];
    }

    @Override
    public INDArray forward(Tape tape, INDArray ids) {
        Embedding.checkIds(ids, vocabSize);
        tape.use(weight);
        long[] all = ids.reshape(ids.length()).toLongVector();
        int n = all.length;
        long local = localVocabSize();
        long[] clamped = new long[n];
        double[] mask = new double[n];
        int inRange = 0;
        for (int i = 0; i < n; i++) {
            long id = all[i] - start;
            if (id >= 0 && id < local) {
                clamped[i] = id;
                mask[i] = 1;
                inRange++;
            }
        }
        INDArray out = Kernels.get().gatherRows(weight.data(), Nd4j.createFromArray(clamped));
        INDArray rows = null;
        INDArray localIds;
        if (inRange < n) {
            out.muliColumnVector(Nd4j.createFromArray(mask).castTo(out.dataType()).reshape(n, 1));
            long[] r = new long[inRange];
            long[] li = new long[inRange];
            for (int i = 0, j = 0; i < n; i++) {
                if (mask[i] != 0) {
                    r[j] = i;
                    li[j++] = clamped[i];
                }
            }
            rows = Nd4j.createFromArray(r);
            localIds = Nd4j.createFromArray(li);
        } else {
            localIds = Nd4j.createFromArray(clamped);
        }
        tape.save(this, new Saved(tape.keep(localIds), tape.keep(rows)));
        return Shards.allReduceSum(tp, out);
    }

    /** Returns null: token ids have no gradient. */
    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        Saved s = tape.pop(this);
        if (weight.requiresGrad()) {
            // the gradient rows of this rank's ids: all of dy, unless some ids lie in other ranks' rows
            INDArray updates = s.rows == null || s.rows.length() == 0 ? dy : Kernels.get().gatherRows(dy, s.rows);
            Embedding.scatterGrad(tape, weight, s.localIds, updates);
        }
        return null;
    }
}
