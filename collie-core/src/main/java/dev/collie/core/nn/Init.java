package dev.collie.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Parameter initialisers. They draw from ND4J's (thread-local, seedable) random generator. */
public final class Init {
    private Init() {
    }

    /** Normal(0, std), as CoLLiE's and Hugging Face's default {@code init_method}. */
    public static INDArray normal(DataType dtype, double std, long... shape) {
        return Nd4j.randn(dtype, shape).muli(std);
    }

    public static INDArray ones(DataType dtype, long... shape) {
        return Nd4j.ones(dtype, shape);
    }

    public static INDArray zeros(DataType dtype, long... shape) {
        return Nd4j.zeros(dtype, shape);
    }
}
