package dev.collie.parallel.tp;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import dev.collie.core.nn.CausalLmLoss;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * Causal-LM cross-entropy over logits split by vocabulary: each tensor-parallel rank holds the logits of
 * its token ids {@code [r·V/n, (r+1)·V/n)} for every row, {@code [rows, V/n]}, and the logits are never
 * gathered. Per row the ranks exchange three numbers: an all-reduce MAX of the row maxima, then one
 * all-reduce SUM of the packed pair (sum of {@code exp(x − max)} over the shard, the shifted target logit
 * where the target lies in this shard and 0 elsewhere). The loss {@code log Σexp(x − max) − (x_t − max)},
 * averaged over the rows whose target is not {@link #IGNORE_INDEX}, is the same on every rank (bit for
 * bit: the communicator's reductions are); with no counted row it is NaN and the gradient zero, as
 * {@link CausalLmLoss}. The gradient of the local logits, {@code (softmax − onehot) / count} restricted to
 * the shard, overwrites the logits array (when it is a contiguous c-order array).
 *
 * <p>Like every tensor-parallel collective, call it from the rank's one thread that runs forward and backward.
 */
public final class VocabParallelLoss extends CausalLmLoss {
    private final Communicator tp;
    private final long vocabSize;

    /** The loss over {@code tp}'s vocabulary shards of a {@code vocabSize}-token vocabulary. */
    public VocabParallelLoss(Communicator tp, long vocabSize) {
        Shards.requireDivisible("vocab_size", vocabSize, tp.size());
        this.tp = tp;
        this.vocabSize = vocabSize;
    }

    public long vocabSize() {
        return vocabSize;
    }

    /** The logits' columns, checked to be one rank's shard of the vocabulary. */
    private long shardColumns(INDArray logits) {
        long local = logits.size(1);
        if (local * tp.size() != vocabSize) {
            throw new IllegalArgumentException("logits have " + local + " columns; a shard of the " + vocabSize
                    + "-token vocabulary over " + tp.size() + " ranks has " + vocabSize / tp.size());
        }
        return local;
    }

    @Override
    public INDArray[] crossEntropy(INDArray logits, INDArray targets, boolean withGradient, double gradScale) {
        int n = (int) logits.size(0);
        long local = shardColumns(logits);
        long start = tp.rank() * local;
        long[] t = targets.reshape(targets.length()).toLongVector();
        if (t.length != n) {
            throw new IllegalArgumentException(t.length + " targets for " + n + " logits rows");
        }
        int count = 0;
        int here = 0;
        for (long id : t) {
            if (id == IGNORE_INDEX) {
                continue;
            }
            if (id < 0 || id >= vocabSize) {
                throw new CollieException("label id " + id + " is outside the vocabulary [0, " + vocabSize + ")");
            }
            count++;
            if (id >= start && id < start + local) {
                here++;
            }
        }
        int[] hereRows = new int[here];
        long[] hereFlat = new long[here];
        for (int r = 0, j = 0; r < n; r++) {
            if (t[r] != IGNORE_INDEX && t[r] >= start && t[r] < start + local) {
                hereRows[j] = r;
                hereFlat[j++] = r * local + (t[r] - start);
            }
        }
        DataType dt = logits.dataType();
        // x becomes exp(x - max), then the gradient: the caller's array itself where the gradient is wanted
        boolean inPlace = withGradient && logits.ordering() == 'c'
                && Shape.hasDefaultStridesForShape(logits);
        INDArray x = inPlace ? logits : logits.dup('c');
        INDArray flat = x.reshape(n * local);

        // the few numbers exchanged travel in float64 for float64 logits, else in float32 (reducible by every backend)
        DataType wire = dt == DataType.DOUBLE ? DataType.DOUBLE : DataType.FLOAT;

        // 1. the global row maxima
        INDArray max = Shards.contiguous(x.max(1).castTo(wire));
        tp.allReduce(max, ReduceOp.MAX);
        double[] m = max.toDoubleVector();

        // 2. shard sums of exp(x - max) and the shifted target logits, summed over the ranks in one message
        double[] xt = here > 0 ? gathered(flat, Nd4j.createFromArray(hereFlat)) : new double[0];
        x.subiColumnVector(max.castTo(dt).reshape(n, 1));
        Transforms.exp(x, false);
        double[] packed = new double[2 * n];
        System.arraycopy(x.sum(1).toDoubleVector(), 0, packed, 0, n);
        for (int j = 0; j < here; j++) {
            packed[n + hereRows[j]] = xt[j] - m[hereRows[j]];
        }
        INDArray sums = Nd4j.createFromArray(packed).castTo(wire);
        tp.allReduce(sums, ReduceOp.SUM);
        double[] s = sums.toDoubleVector();

        double loss = Double.NaN;
        if (count > 0) {
            double total = 0;
            for (int r = 0; r < n; r++) {
                if (t[r] != IGNORE_INDEX) {
                    total += Math.log(s[r]) - s[n + r];
                }
            }
            loss = total / count;
        }
        INDArray grad = null;
        if (withGradient) {
            // softmax · gradScale / count on counted rows (0 on ignored ones), then -gradScale/count at the targets
            // in this shard
            double[] factor = new double[n];
            for (int r = 0; r < n; r++) {
                factor[r] = t[r] == IGNORE_INDEX ? 0 : gradScale / (s[r] * count);
            }
            x.muliColumnVector(Nd4j.createFromArray(factor).castTo(dt).reshape(n, 1));
            if (here > 0) {
                INDArray updates = Nd4j.valueArrayOf(new long[] {here}, -gradScale / count, dt);
                Nd4j.exec(DynamicCustomOp.builder("scatter_add")
                        .addInputs(flat, Nd4j.createFromArray(hereFlat), updates).addOutputs(flat).build());
            }
            grad = x;
        }
        return new INDArray[] {Nd4j.scalar(dt, loss), grad};
    }

    /**
     * The targets one rank would draw from the whole vocabulary's softmax ({@link CausalLmLoss#sampleTargets}),
     * identical on every tensor-parallel rank: each rank adds its columns of the same Gumbel draw (same seeds,
     * the whole vocabulary's noise) to its logits and takes its row maxima and their ids; an all-reduce MAX of
     * the maxima, then one of the ids that reach it (the smallest id on a tie, as one rank's argmax) combine them.
     */
    @Override
    public INDArray sampleTargets(INDArray logits, INDArray mask, long[] seeds) {
        int n = (int) logits.size(0);
        long local = shardColumns(logits);
        long start = tp.rank() * local;
        INDArray noisy = gumbelPerturbed(logits, mask, seeds, vocabSize, start);
        long[] arg = argmax(noisy);
        DataType wire = logits.dataType() == DataType.DOUBLE ? DataType.DOUBLE : DataType.FLOAT;
        double[] mine = noisy.max(1).castTo(wire).toDoubleVector();
        INDArray best = Nd4j.createFromArray(mine).castTo(wire);
        tp.allReduce(best, ReduceOp.MAX);
        double[] top = best.toDoubleVector();
        // vocab − id of the rows whose maximum is here: the largest over the ranks is the smallest id
        double[] claim = new double[n];
        for (int r = 0; r < n; r++) {
            claim[r] = mine[r] == top[r] ? vocabSize - (start + arg[r]) : 0;
        }
        INDArray ids = Nd4j.createFromArray(claim);
        tp.allReduce(ids, ReduceOp.MAX);
        double[] won = ids.toDoubleVector();
        long[] t = new long[n];
        for (int r = 0; r < n; r++) {
            t[r] = won[r] > 0 ? vocabSize - (long) won[r] : IGNORE_INDEX;
        }
        return masked(t, mask);
    }

    private static double[] gathered(INDArray flat, INDArray idx) {
        INDArray out = Nd4j.createUninitialized(flat.dataType(), idx.length());
        Nd4j.exec(DynamicCustomOp.builder("gather").addInputs(flat, idx).addOutputs(out).addIntegerArguments(0).build());
        return out.toDoubleVector();
    }
}
