package dev.collie.core.nn;

import dev.collie.core.tensor.Workspaces;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;

/**
 * An ordered list of layers run on one tape: forward in order, backward as its mirror, each layer's backward (and an
 * inference forward) in a scratch workspace when an enclosing workspace is open (only its result is kept). What a whole model, a
 * prompt-tuned model and a pipeline stage each do with their layers.
 */
public final class LayerStack {
    private LayerStack() {
    }

    /**
     * Runs {@code layers} in order from {@code x}; returns the last one's output. On an inference tape each layer runs
     * in a scratch workspace (only its output is kept), so a forward holds one layer's temporaries at a time; on a
     * training tape as {@link Tape#forwardLayer} decides (in the scratch workspace with bf16 activations).
     */
    public static INDArray forward(List<? extends Layer> layers, Tape tape, INDArray x) {
        INDArray y = x;
        for (Layer l : layers) {
            INDArray in = y;
            y = tape.isTraining() ? tape.forwardLayer(() -> l.forward(tape, in))
                    : Workspaces.scratch(() -> l.forward(tape, in));
        }
        return y;
    }

    /**
     * Backward of {@code layers} in reverse from {@code dy}, the gradient of their output; returns the gradient of
     * their input (null when the first layer takes token ids).
     */
    public static INDArray backward(List<? extends Layer> layers, Tape tape, INDArray dy) {
        INDArray d = dy;
        for (int i = layers.size() - 1; i >= 0; i--) {
            Layer layer = layers.get(i);
            INDArray g = d;
            d = Workspaces.scratch(() -> layer.backward(tape, g));
        }
        return d;
    }
}
