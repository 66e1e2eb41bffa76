package dev.collie.parallel.dp;

import dev.collie.core.CollieException;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The bookkeeping of a {@link GradientReducer}'s bucket: parameters of one type whose gradients are reduced
 * together, their slots in bucket order, and which of them got their gradient this step (a bucket is launched once
 * none is pending); and the step's failure when some got none.
 */
class GradientBucket<S extends GradientBucket.Named> {
    /** A bucket's slot: one parameter's place in it, under the parameter's name. */
    interface Named {
        String name();
    }

    final int index;
    final DataType dtype;
    final List<S> slots = new ArrayList<>();
    /** Slots still waiting for their gradient this step. */
    int pending;
    /** Per slot: whether its gradient arrived this step (sized once the slots are complete). */
    boolean[] ready;

    GradientBucket(int index, DataType dtype) {
        this.index = index;
        this.dtype = dtype;
    }

    /** The start of a step: every slot pending. */
    void reset() {
        pending = slots.size();
        Arrays.fill(ready, false);
    }

    /** The names of the slots whose gradient has not arrived this step, bucket after bucket. */
    static List<String> missing(List<? extends GradientBucket<?>> buckets) {
        List<String> missing = new ArrayList<>();
        for (GradientBucket<?> b : buckets) {
            for (int i = 0; i < b.slots.size(); i++) {
                if (!b.ready[i]) {
                    missing.add(b.slots.get(i).name());
                }
            }
        }
        return missing;
    }

    /**
     * The failure of a step's end where {@code missing} parameters got no gradient: {@code who} ("data parallel
     * rank 1") names the rank, {@code collectives} what would not match across the ranks.
     */
    static CollieException noGradient(String who, List<String> missing, String collectives) {
        return new CollieException(who + ": no gradient this step for " + missing.size() + " trainable parameter(s) "
                + missing + "; every trainable parameter must be used in every step (freeze unused ones), or the"
                + " ranks' " + collectives + " would not match");
    }
}
