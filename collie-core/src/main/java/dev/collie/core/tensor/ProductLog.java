package dev.collie.core.tensor;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The matrix products {@link Kernels#get()} runs while a log is open, with their shapes: what a test checks when a
 * product must not run (a frozen weight's gradient, {@code dyᵀ·x}), or a profile counts. One log at a time, over every
 * thread; with none open a product costs one read of a field more.
 * <pre>{@code
 * try (ProductLog log = ProductLog.open()) {
 *     runner.forwardBackward(batches);
 *     log.products();   // every matmul of the step, in order
 * }
 * }</pre>
 */
public final class ProductLog implements AutoCloseable {
    /** One product {@code op(a)·op(b)}: the operands' shapes as given and the output's. */
    public record Product(long[] a, long[] b, boolean transA, boolean transB, long[] out) {
        /** A rank-2 product whose first operand is transposed ({@code aᵀ·b}): how a linear's weight gradient looks. */
        public boolean isWeightGradientShaped() {
            return a.length == 2 && transA && !transB;
        }

        @Override
        public String toString() {
            return Arrays.toString(a) + (transA ? "ᵀ" : "") + " · " + Arrays.toString(b) + (transB ? "ᵀ" : "")
                    + " -> " + Arrays.toString(out);
        }
    }

    private static final AtomicReference<ProductLog> OPEN = new AtomicReference<>();

    private final List<Product> products = new ArrayList<>();

    private ProductLog() {
    }

    /**
     * Starts logging products.
     *
     * @throws IllegalStateException when a log is open already
     */
    public static ProductLog open() {
        ProductLog log = new ProductLog();
        if (!OPEN.compareAndSet(null, log)) {
            throw new IllegalStateException("a product log is open already");
        }
        return log;
    }

    /** The products logged so far, in the order they ran (several threads: in the order they were logged). */
    public synchronized List<Product> products() {
        return List.copyOf(products);
    }

    @Override
    public void close() {
        OPEN.compareAndSet(this, null);
    }

    /** Called by the kernels for each product; {@code out} is its result. */
    static void note(INDArray a, INDArray b, boolean transA, boolean transB, INDArray out) {
        ProductLog log = OPEN.get();
        if (log != null) {
            Product p = new Product(a.shape(), b.shape(), transA, transB, out.shape());
            synchronized (log) {
                log.products.add(p);
            }
        }
    }

    /** {@link Kernels} that log every product to the open log, if any, and hand it on. */
    static final class Logging extends ForwardingKernels {
        Logging(Kernels wrapped) {
            super(wrapped);
        }

        @Override
        public INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB) {
            INDArray out = super.matmul(a, b, transA, transB);
            note(a, b, transA, transB, out);
            return out;
        }

        @Override
        public INDArray matmul(INDArray a, INDArray b, boolean transA, boolean transB, INDArray out) {
            INDArray r = super.matmul(a, b, transA, transB, out);
            note(a, b, transA, transB, r);
            return r;
        }
    }
}
