package dev.collie.core.eval;

import dev.collie.core.CollieException;
import dev.collie.core.data.Sample;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * One batch of evaluation results, as an evaluator hands it to every {@link Metric} (CoLLiE's {@code result} dict):
 * decoded texts, predicted and true labels, a summed loss, or several of these. A part the batch lacks is null; a
 * metric that needs it fails naming the metric and the part.
 *
 * @param texts predictions and their references, for BLEU, ROUGE and decoding
 * @param labels predicted and true class or token ids, for accuracy and precision/recall/F1
 * @param loss a summed loss and its token count, for perplexity
 */
public record EvalBatch(Texts texts, Labels labels, Loss loss) {
    public EvalBatch {
        if (texts == null && labels == null && loss == null) {
            throw new IllegalArgumentException("an evaluation batch needs texts, labels or a loss");
        }
    }

    /** A batch of decoded predictions with their references ({@code references} may be null: predictions only). */
    public static EvalBatch ofTexts(List<String> predictions, List<List<String>> references) {
        return new EvalBatch(new Texts(predictions, references), null, null);
    }

    /** A batch of predicted and true labels; {@code mask} may be null (every position counts). */
    public static EvalBatch ofLabels(INDArray predicted, INDArray target, INDArray mask) {
        return new EvalBatch(null, new Labels(predicted, target, mask), null);
    }

    /** A batch's summed loss over {@code tokens} tokens. */
    public static EvalBatch ofLoss(double sum, long tokens) {
        return new EvalBatch(null, null, new Loss(sum, tokens));
    }

    /** The texts, for {@code metric}; fails naming it when the batch has none. */
    public Texts texts(String metric) {
        return require(texts, metric, "texts (predictions and references)");
    }

    /** The labels, for {@code metric}; fails naming it when the batch has none. */
    public Labels labels(String metric) {
        return require(labels, metric, "labels (predicted and true ids)");
    }

    /** The loss, for {@code metric}; fails naming it when the batch has none. */
    public Loss loss(String metric) {
        return require(loss, metric, "a loss (summed loss and token count)");
    }

    private <T> T require(T part, String metric, String what) {
        if (part == null) {
            throw new CollieException("metric '" + metric + "' needs " + what + "; this batch has only " + parts());
        }
        return part;
    }

    private String parts() {
        List<String> have = new ArrayList<>();
        if (texts != null) {
            have.add("texts");
        }
        if (labels != null) {
            have.add("labels");
        }
        if (loss != null) {
            have.add("a loss");
        }
        return String.join(" and ", have);
    }

    /**
     * Decoded predictions and, for each, its references (one or more texts; BLEU and ROUGE score a prediction
     * against all of its references).
     *
     * @param predictions one text per sample
     * @param references one list of texts per prediction, or null when there are none (decoding only)
     */
    public record Texts(List<String> predictions, List<List<String>> references) {
        public Texts {
            if (predictions == null || predictions.stream().anyMatch(Objects::isNull)) {
                throw new IllegalArgumentException("predictions must be a list of texts without nulls");
            }
            predictions = List.copyOf(predictions);
            if (references != null) {
                if (references.size() != predictions.size()) {
                    throw new IllegalArgumentException(predictions.size() + " predictions but " + references.size()
                            + " reference lists: give one list per prediction");
                }
                List<List<String>> copy = new ArrayList<>(references.size());
                for (int i = 0; i < references.size(); i++) {
                    List<String> r = references.get(i);
                    if (r == null || r.stream().anyMatch(Objects::isNull)) {
                        throw new IllegalArgumentException("references of prediction " + i
                                + " must be a list of texts without nulls");
                    }
                    copy.add(List.copyOf(r));
                }
                references = List.copyOf(copy);
            }
        }

        /** The references, each list non-empty, for {@code metric} (which scores against them). */
        public List<List<String>> requireReferences(String metric) {
            if (references == null) {
                throw new CollieException("metric '" + metric + "' needs references; this batch has predictions only");
            }
            for (int i = 0; i < references.size(); i++) {
                if (references.get(i).isEmpty()) {
                    throw new CollieException("metric '" + metric + "': prediction " + i + " of the batch has no"
                            + " reference");
                }
            }
            return references;
        }
    }

    /**
     * Predicted and true ids of a batch: class ids {@code [B]}, or token ids {@code [B, T]}. {@code predicted} holds
     * ids (an integer type, the shape of {@code target}) or scores with one more dimension (logits {@code [B, C]} or
     * {@code [B, T, V]}), whose argmax over the last dimension is the prediction. A position counts when its
     * {@code mask} is 1 (every position when the mask is null) and its target is not {@link Sample#IGNORE_INDEX}.
     *
     * @param predicted ids or scores
     * @param target true ids, an integer type, {@code [B]} or {@code [B, T]}
     * @param mask 0/1 of {@code target}'s shape, or null
     */
    public record Labels(INDArray predicted, INDArray target, INDArray mask) {
        public Labels {
            if (predicted == null || target == null) {
                throw new IllegalArgumentException("labels need predicted and target arrays");
            }
            if (target.rank() < 1 || target.rank() > 2 || !target.dataType().isIntType()) {
                throw new IllegalArgumentException("target must hold integer ids of shape [B] or [B, T], got "
                        + describe(target));
            }
            long[] want = target.shape();
            if (predicted.rank() == target.rank()) {
                if (!predicted.dataType().isIntType()) {
                    throw new IllegalArgumentException("predicted has target's rank, so it must hold integer ids, got "
                            + describe(predicted) + " (give scores with one more dimension to take their argmax)");
                }
            } else if (predicted.rank() != target.rank() + 1) {
                throw new IllegalArgumentException("predicted must be ids of target's shape " + Arrays.toString(want)
                        + " or scores with one more dimension, got " + describe(predicted));
            }
            if (!Arrays.equals(Arrays.copyOf(predicted.shape(), want.length), want)) {
                throw new IllegalArgumentException("predicted " + describe(predicted) + " does not match target "
                        + describe(target));
            }
            if (mask != null && !Arrays.equals(mask.shape(), want)) {
                throw new IllegalArgumentException("mask " + describe(mask) + " must have target's shape "
                        + Arrays.toString(want));
            }
        }

        /** The ids as flat rows: the argmax of scores taken, the mask and the ignore index applied. */
        public Positions positions() {
            INDArray ids = predicted.rank() == target.rank() ? predicted : Nd4j.argMax(predicted, predicted.rank() - 1);
            int rows = Math.toIntExact(target.size(0));
            int cols = target.rank() == 1 ? 1 : Math.toIntExact(target.size(1));
            long[] p = flat(ids);
            long[] t = flat(target);
            long[] m = mask == null ? null : flat(mask);
            boolean[] counted = new boolean[t.length];
            for (int i = 0; i < t.length; i++) {
                counted[i] = t[i] != Sample.IGNORE_INDEX && (m == null || m[i] == 1);
            }
            return new Positions(rows, cols, p, t, counted);
        }

        private static long[] flat(INDArray a) {
            return a.castTo(DataType.INT64).dup('c').data().asLong();
        }

        private static String describe(INDArray a) {
            return a.dataType() + " " + Arrays.toString(a.shape());
        }
    }

    /**
     * The positions of a {@link Labels} batch in row-major order: {@code rows × cols} predicted and true ids and
     * whether each counts.
     */
    public record Positions(int rows, int cols, long[] predicted, long[] target, boolean[] counted) {
    }

    /**
     * A loss summed over a batch's tokens (in nats: the sum of {@code -log p(target)}) and the number of tokens.
     *
     * @param sum the summed loss
     * @param tokens how many tokens it sums over, ≥ 0
     */
    public record Loss(double sum, long tokens) {
        public Loss {
            if (tokens < 0) {
                throw new IllegalArgumentException("a loss's token count must be >= 0, got " + tokens);
            }
        }
    }
}
