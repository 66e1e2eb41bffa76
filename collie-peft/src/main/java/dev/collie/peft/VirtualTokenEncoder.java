package dev.collie.peft;

import dev.collie.core.nn.Embedding;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.HashMap;
import java.util.Map;

/**
 * peft's prompt encoders ({@code PromptEmbedding}, {@code PrefixEncoder}, {@code PromptEncoder}): a table
 * {@code embedding.weight} of one row per virtual token (normal(0, 1) at first, as {@code nn.Embedding}),
 * optionally followed by an MLP ({@code transform} for prefix tuning's projection, {@code mlp_head} for P-tuning).
 * The output, one row per virtual token, is the same for every sequence of a batch. What peft saves as
 * {@code prompt_embeddings} is this output; loading it gives a plain table ({@link #table}).
 */
public final class VirtualTokenEncoder extends Module {
    private final Embedding embedding;
    private final Mlp head;
    private final int tokens;
    private final String headName;

    private VirtualTokenEncoder(int tokens, int dim, DataType dtype, String headName, Mlp head) {
        this.tokens = tokens;
        this.headName = headName;
        this.embedding = registerModule("embedding", new Embedding(tokens, dim, dtype, 1.0));
        this.head = head == null ? null : registerModule(headName, head);
    }

    /** A plain table {@code [tokens, dim]}, normal(0, 1). */
    public static VirtualTokenEncoder table(int tokens, int dim, DataType dtype) {
        return new VirtualTokenEncoder(tokens, dim, dtype, null, null);
    }

    /** Prefix tuning's projection: table {@code [tokens, dim]}, then Linear(dim, hidden), tanh, Linear(hidden, out). */
    public static VirtualTokenEncoder prefixProjection(int tokens, int dim, int hidden, int out, DataType dtype) {
        return new VirtualTokenEncoder(tokens, dim, dtype, "transform",
                new Mlp(Mlp.Activation.TANH, dtype, dim, hidden, out));
    }

    /** P-tuning's MLP: table {@code [tokens, dim]}, then Linear, ReLU, Linear, ReLU, Linear of width {@code hidden}. */
    public static VirtualTokenEncoder promptMlp(int tokens, int dim, int hidden, DataType dtype) {
        return new VirtualTokenEncoder(tokens, dim, dtype, "mlp_head",
                new Mlp(Mlp.Activation.RELU, dtype, dim, hidden, hidden, dim));
    }

    public int tokens() {
        return tokens;
    }

    /** The table of the virtual tokens' inputs ({@code embedding.weight}). */
    public Parameter tableParameter() {
        return embedding.weight();
    }

    /** Whether an MLP follows the table. */
    public boolean hasHead() {
        return head != null;
    }

    /** Zeroes the output: the table without a head, else the head's last layer (peft's {@code init_weights="zero"}). */
    void zeroOutput() {
        if (head == null) {
            embedding.weight().data().assign(0);
        } else {
            var last = head.linears().get(head.linears().size() - 1);
            last.weight().data().assign(0);
            last.bias().data().assign(0);
        }
    }

    /** The virtual tokens {@code [tokens, outDim]}; on a training tape, {@link #backward} must follow. */
    public INDArray forward(Tape tape) {
        INDArray ids = Nd4j.arange(0, tokens).castTo(DataType.INT64);
        INDArray x = embedding.forward(tape, ids);
        return head == null ? x : head.forward(tape, x);
    }

    /** Delivers the gradients of the encoder's parameters for {@code dOut} ({@code [tokens, outDim]}). */
    public void backward(Tape tape, INDArray dOut) {
        INDArray d = head == null ? dOut : head.backward(tape, dOut);
        embedding.backward(tape, d);
    }

    /**
     * The output this encoder would give with the weights {@code params} (by this module's parameter names, e.g.
     * gathered from the lead rank), computed without touching this encoder's own.
     */
    INDArray outputWith(Map<String, INDArray> params) {
        INDArray table = params.get("embedding.weight");
        if (head == null) {
            return table.dup();
        }
        Map<String, INDArray> mine = new HashMap<>();
        String prefix = headName + ".";
        params.forEach((n, v) -> {
            if (n.startsWith(prefix)) {
                mine.put(n.substring(prefix.length()), v);
            }
        });
        return head.forwardWith(mine, table);
    }

    /** The current output, computed without a tape (what peft saves as {@code prompt_embeddings}). */
    public INDArray output() {
        return forward(Tape.forInference(1, tokens));
    }
}
