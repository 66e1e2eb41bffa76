package dev.collie.core.tensor;

import org.nd4j.linalg.api.ndarray.INDArray;

import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;
import static org.nd4j.linalg.indexing.NDArrayIndex.point;

/** Which dimensions of a head a rotary embedding rotates together. */
public enum RotaryPairs {
    /** Dimension i with i + d/2: Hugging Face's "rotate half" (LLaMA, Qwen, Mistral, InternLM2). */
    HALVES,
    /** Dimension 2i with 2i + 1: the original RoPE's interleaved pairs (ChatGLM2/3, GPT-J and CodeGen). */
    INTERLEAVED;

    /** The first dimension of pair {@code i} in a head of {@code d}. */
    public int first(int i, int d) {
        return this == HALVES ? i : 2 * i;
    }

    /** The second dimension of pair {@code i} in a head of {@code d}. */
    public int second(int i, int d) {
        return this == HALVES ? i + d / 2 : 2 * i + 1;
    }

    /** Views {@code [n, heads, d/2]} of the pairs' first and second dimensions of heads {@code [n, heads, d]}. */
    INDArray[] split(INDArray heads) {
        long d = heads.size(2);
        if (this == HALVES) {
            return new INDArray[] {heads.get(all(), all(), interval(0, d / 2)), heads.get(all(), all(), interval(d / 2, d))};
        }
        INDArray p = heads.reshape('c', heads.size(0), heads.size(1), d / 2, 2);
        return new INDArray[] {p.get(all(), all(), all(), point(0)), p.get(all(), all(), all(), point(1))};
    }
}
