package dev.collie.core.nn;

import dev.collie.core.CollieException;
import dev.collie.core.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Token ids (any shape, n ids) to rows {@code [n, dim]} of a {@code [vocab, dim]} table. */
public final class Embedding extends Module implements TiedEmbedding {
    private final Parameter weight;
    private final Linear head;

    public Embedding(long vocab, long dim, DataType dtype, double initStd) {
        this.weight = registerParameter("weight", new Parameter(Init.normal(dtype, initStd, vocab, dim)));
        this.head = Linear.sharing(weight);
    }

    /** A bias-free linear over this table: logits {@code [n, vocab]} (not registered as a module). */
    @Override
    public Layer outputHead() {
        return head;
    }

    public Parameter weight() {
        return weight;
    }

    public long vocabSize() {
        return weight.shape()[0];
    }

    @Override
    public INDArray forward(Tape tape, INDArray ids) {
        checkIds(ids, vocabSize());
        tape.use(weight);
        tape.save(this, tape.keep(ids));
        return Kernels.get().gatherRows(weight.data(), ids);
    }

    /** Returns null: token ids have no gradient. */
    @Override
    public INDArray backward(Tape tape, INDArray dy) {
        INDArray ids = tape.pop(this);
        scatterGrad(tape, weight, ids, dy);
        return null;
    }

    /**
     * The backward of a row lookup in {@code table}: when the table requires a gradient, delivers the rows of
     * {@code dy} at rows {@code ids} (zero elsewhere; a zero gradient for no ids).
     */
    public static void scatterGrad(Tape tape, Parameter table, INDArray ids, INDArray dy) {
        if (table.requiresGrad()) {
            table.accumulateRows(tape, ids, dy);
        }
    }

    /** Fails with a clear message when an id lies outside {@code [0, vocab)}. */
    public static void checkIds(INDArray ids, long vocab) {
        double min = ids.minNumber().doubleValue();
        double max = ids.maxNumber().doubleValue();
        if (min < 0 || max >= vocab) {
            throw new CollieException("token id " + (long) (min < 0 ? min : max)
                    + " is outside the vocabulary [0, " + vocab + ")");
        }
    }
}
