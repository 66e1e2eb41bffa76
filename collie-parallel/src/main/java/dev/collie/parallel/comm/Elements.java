package dev.collie.parallel.comm;

import dev.collie.core.dist.ReduceOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.util.Arrays;

/** Byte views of INDArrays and the element-wise reduction kernels over byte buffers. */
final class Elements {
    private Elements() { }

    /** A native-order view of {@code a}'s elements (position 0, limit = length × width); no copy. */
    static ByteBuffer view(INDArray a, String op) {
        if (a.length() > 0 && (a.ordering() != 'c' || !Shape.hasDefaultStridesForShape(a))) {
            throw new IllegalArgumentException(op + ": the array must be contiguous c-order, got ordering "
                    + a.ordering() + " shape " + Arrays.toString(a.shape())
                    + " stride " + Arrays.toString(a.stride()));
        }
        long width = a.dataType().width();
        long bytes = a.length() * width;
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(op + ": arrays over 2 GiB are not supported (" + bytes + " bytes)");
        }
        if (a.length() == 0) {
            return ByteBuffer.allocate(0).order(ByteOrder.nativeOrder());
        }
        ByteBuffer all = a.data().asNio().duplicate().order(ByteOrder.nativeOrder());
        int start = Math.toIntExact(a.offset() * width);
        all.limit(start + (int) bytes).position(start);
        return all.slice().order(ByteOrder.nativeOrder());
    }

    static void requireReducible(DataType t, String op) {
        switch (t) {
            case FLOAT, DOUBLE, INT, LONG -> { }
            default -> throw new IllegalArgumentException(op + ": reductions support FLOAT, DOUBLE, INT32 and INT64, not " + t);
        }
    }

    /** A fresh buffer holding {@code count} bytes of {@code src} from byte {@code from}. */
    static ByteBuffer copy(ByteBuffer src, int from, int count) {
        ByteBuffer out = ByteBuffer.allocate(count).order(ByteOrder.nativeOrder());
        ByteBuffer s = src.duplicate();
        s.limit(from + count).position(from);
        out.put(s).flip();
        return out;
    }

    /** Writes all of {@code message} into {@code dst} at byte {@code at}. */
    static void write(ByteBuffer dst, int at, ByteBuffer message) {
        ByteBuffer d = dst.duplicate();
        d.position(at);
        d.put(message.duplicate());
    }

    /** {@code acc[i] = acc[i] op src[from/width + i]} for every element of {@code acc}. */
    static void accumulate(DataType t, ReduceOp op, ByteBuffer acc, ByteBuffer src, int from) {
        boolean max = op == ReduceOp.MAX;
        ByteBuffer s = src.duplicate().order(ByteOrder.nativeOrder());
        s.position(from);
        ByteBuffer sl = s.slice().order(ByteOrder.nativeOrder());
        ByteBuffer a = acc.duplicate().order(ByteOrder.nativeOrder());
        switch (t) {
            case FLOAT -> {
                FloatBuffer x = a.asFloatBuffer();
                FloatBuffer y = sl.asFloatBuffer();
                int n = x.limit();
                for (int i = 0; i < n; i++) {
                    x.put(i, max ? Math.max(x.get(i), y.get(i)) : x.get(i) + y.get(i));
                }
            }
            case DOUBLE -> {
                DoubleBuffer x = a.asDoubleBuffer();
                DoubleBuffer y = sl.asDoubleBuffer();
                int n = x.limit();
                for (int i = 0; i < n; i++) {
                    x.put(i, max ? Math.max(x.get(i), y.get(i)) : x.get(i) + y.get(i));
                }
            }
            case INT -> {
                IntBuffer x = a.asIntBuffer();
                IntBuffer y = sl.asIntBuffer();
                int n = x.limit();
                for (int i = 0; i < n; i++) {
                    x.put(i, max ? Math.max(x.get(i), y.get(i)) : x.get(i) + y.get(i));
                }
            }
            case LONG -> {
                LongBuffer x = a.asLongBuffer();
                LongBuffer y = sl.asLongBuffer();
                int n = x.limit();
                for (int i = 0; i < n; i++) {
                    x.put(i, max ? Math.max(x.get(i), y.get(i)) : x.get(i) + y.get(i));
                }
            }
            default -> throw new IllegalStateException("unreachable: " + t);
        }
    }

    /** Divides every element by {@code n} (integer division for integer types). */
    static void divide(DataType t, ByteBuffer acc, int n) {
        ByteBuffer a = acc.duplicate().order(ByteOrder.nativeOrder());
        switch (t) {
            case FLOAT -> {
                FloatBuffer x = a.asFloatBuffer();
                for (int i = 0; i < x.limit(); i++) {
                    x.put(i, x.get(i) / n);
                }
            }
            case DOUBLE -> {
                DoubleBuffer x = a.asDoubleBuffer();
                for (int i = 0; i < x.limit(); i++) {
                    x.put(i, x.get(i) / n);
                }
            }
            case INT -> {
                IntBuffer x = a.asIntBuffer();
                for (int i = 0; i < x.limit(); i++) {
                    x.put(i, x.get(i) / n);
                }
            }
            case LONG -> {
                LongBuffer x = a.asLongBuffer();
                for (int i = 0; i < x.limit(); i++) {
                    x.put(i, x.get(i) / n);
                }
            }
            default -> throw new IllegalStateException("unreachable: " + t);
        }
    }
}
