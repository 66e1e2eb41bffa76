package dev.collie.core.tensor;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.dnnl.dnnl_engine;
import org.bytedeco.dnnl.dnnl_exec_arg_t;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc;
import org.bytedeco.dnnl.dnnl_post_ops;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_attr;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.bytedeco.dnnl.dnnl_stream;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;

import static org.bytedeco.dnnl.global.dnnl.*;

/**
 * oneDNN 3.3 (JavaCPP's {@code dnnl} presets) on ND4J's fp32 buffers, without copies: matrix products in fp32
 * or with {@code fpmath_mode bf16} (inputs rounded to bfloat16 inside the kernel, fp32 accumulation and
 * results: PyTorch's {@code float32_matmul_precision = "medium"}; AMX where the CPU has it, 4–5× the fp32
 * GEMM here), and the vectorised softmax, log-softmax, exp and SiLU kernels (libnd4j's call scalar
 * {@code expf}).
 *
 * <p>ND4J's own oneDNN (v2.3) has no AMX code, hence this second native library. Each thread keeps its own
 * stream and compiled primitives (one per operation, shape and layout), with user-managed scratchpads, so
 * worker threads may run side by side. Loaded only when used; {@link #unavailableReason()} says why it
 * cannot be.
 *
 * <p>Why one class of ~540 lines: it is the one binding of oneDNN 3.3's C API (library loading, memory descriptors,
 * primitive caches, post-op lists), kept in one place so that nothing else touches native handles.
 */
final class Dnnl {
    private static final dnnl_engine ENGINE = new dnnl_engine();
    private static final String UNAVAILABLE;

    static {
        String why = null;
        try {
            check(dnnl_engine_create(ENGINE, dnnl_cpu, 0), "creating the CPU engine");
        } catch (RuntimeException | LinkageError e) {
            why = e.toString();
        }
        UNAVAILABLE = why;
    }

    private static final ThreadLocal<PerThread> LOCAL = ThreadLocal.withInitial(PerThread::new);

    private static final long MATMUL = 1;
    private static final long SOFTMAX = 2;
    private static final long LOG_SOFTMAX = 3;
    private static final long SOFTMAX_BACKWARD = 4;
    private static final long EXP = 5;
    private static final long SWISH = 6;
    private static final long SWISH_BACKWARD = 7;
    private static final long BINARY = 8;
    private static final long MATMUL_MUL_ADD = 9;
    private static final long SCALED_SUB = 10;
    private static final int SRC_0_SCALE = DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC_0;
    /** The execution argument of the tensor of a primitive's first binary post-op. */
    private static final int POST_OP_0_SRC = DNNL_ARG_ATTR_MULTIPLE_POST_OP_BASE | DNNL_ARG_SRC_1;

    private Dnnl() {
    }

    /** Null when oneDNN loaded and made its engine, else the reason. */
    static String unavailableReason() {
        return UNAVAILABLE;
    }

    /** The instruction set oneDNN dispatches to, e.g. {@code avx512_core_amx}. */
    static String isa() {
        int isa = dnnl_get_effective_cpu_isa();
        if (isa == dnnl_cpu_isa_avx512_core_amx || isa == dnnl_cpu_isa_avx512_core_amx_fp16) {
            return "avx512_core_amx";
        }
        if (isa == dnnl_cpu_isa_avx512_core_bf16) {
            return "avx512_core_bf16";
        }
        if (isa == dnnl_cpu_isa_avx512_core_vnni) {
            return "avx512_core_vnni";
        }
        if (isa == dnnl_cpu_isa_avx512_core) {
            return "avx512_core";
        }
        if (isa == dnnl_cpu_isa_avx2_vnni || isa == dnnl_cpu_isa_avx2_vnni_2) {
            return "avx2_vnni";
        }
        if (isa == dnnl_cpu_isa_avx2) {
            return "avx2";
        }
        return "isa 0x" + Integer.toHexString(isa);
    }

    /**
     * {@code out = op(a)·op(b)} for fp32 arrays of rank 2, or batched over the leading dimensions for rank 3
     * and 4 (the same batch shape on both sides), any strides; {@code bf16} picks fpmath mode bf16, else
     * the products are exact fp32 ones.
     */
    static void matmul(INDArray a, INDArray b, boolean transA, boolean transB, INDArray out, boolean bf16) {
        requireFloat(a, b, out);
        int r = out.rank();
        // each operand as its op(x) view: a transpose only swaps the last two sizes and strides
        long[] key = new long[2 + 6 * r];
        key[0] = MATMUL;
        key[1] = bf16 ? 1 : 0;
        put(key, 2, a, transA, r);
        put(key, 2 + 2 * r, b, transB, r);
        put(key, 2 + 4 * r, out, false, r);
        run(key, k -> new Primitive(k, Dnnl::matmulDesc, DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST), a, b, out);
    }

    /** Softmax over the last dimension of a C-ordered fp32 array, into {@code out} (may be {@code x}). */
    static void softmax(INDArray x, INDArray out) {
        rowwise(SOFTMAX, x, out);
    }

    /** Log-softmax over the last dimension of a C-ordered fp32 array, into {@code out} (may be {@code x}). */
    static void logSoftmax(INDArray x, INDArray out) {
        rowwise(LOG_SOFTMAX, x, out);
    }

    /** {@code dx = p·(dp − Σ p·dp)} over the last dimension, from softmax output {@code p}; C-ordered fp32. */
    static void softmaxBackward(INDArray p, INDArray dp, INDArray dx) {
        requireFloat(p, dp, dx);
        long[] key = shapeKey(SOFTMAX_BACKWARD, p);
        run(key, k -> new Primitive(k, Dnnl::softmaxBackwardDesc, DNNL_ARG_DST, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC),
                c(p), c(dp), c(dx));
    }

    /** {@code out = exp(x)} element-wise, C-ordered fp32 ({@code out} may be {@code x}). */
    static void exp(INDArray x, INDArray out) {
        requireFloat(x, x, out);
        run(shapeKey(EXP, x), k -> new Primitive(k, Dnnl::eltwiseDesc, DNNL_ARG_SRC, DNNL_ARG_DST), c(x), c(out));
    }

    /** {@code out = x·sigmoid(x)} (SiLU) element-wise, C-ordered fp32. */
    static void silu(INDArray x, INDArray out) {
        requireFloat(x, x, out);
        run(shapeKey(SWISH, x), k -> new Primitive(k, Dnnl::eltwiseDesc, DNNL_ARG_SRC, DNNL_ARG_DST), c(x), c(out));
    }

    /** {@code dx = dy · silu'(x)}, C-ordered fp32. */
    static void siluBackward(INDArray x, INDArray dy, INDArray dx) {
        requireFloat(x, dy, dx);
        run(shapeKey(SWISH_BACKWARD, x),
                k -> new Primitive(k, Dnnl::swishBackwardDesc, DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC),
                c(x), c(dy), c(dx));
    }

    /**
     * {@code out = (a·b) ⊙ c + out}: an exact fp32 product (whatever the matmul precision) whose result is multiplied
     * element-wise by {@code c} and added to {@code out}, in one pass over {@code out}. Rank 2, dense C-ordered
     * {@code a}, {@code c} and {@code out} of the product's shape; {@code b} any strides.
     */
    static void matmulMulAdd(INDArray a, INDArray b, INDArray c, INDArray out) {
        requireFloat(a, b, out);
        requireFloat(c, c, c);
        long[] key = new long[2 + 6 * 2];
        key[0] = MATMUL_MUL_ADD;
        key[1] = 0;
        put(key, 2, c(a), false, 2);
        put(key, 2 + 4, b, false, 2);
        put(key, 2 + 8, c(out), false, 2);
        c(c);
        run(key, k -> new Primitive(k, Dnnl::matmulDesc, DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, POST_OP_0_SRC),
                a, b, out, c);
    }

    /**
     * {@code out = a · b + sum·out} element-wise ({@code sum} 0: just writes). fp32 arrays of the same
     * rank, any strides (views of one buffer: no copies); {@code a} and {@code out} have the same shape,
     * {@code b} that shape or size 1 in the dimensions it is broadcast along.
     */
    static void multiply(INDArray a, INDArray b, INDArray out, float sum) {
        binary(dnnl_binary_mul, a, b, out, sum);
    }

    /**
     * {@code out = scale·a − b} element-wise in one pass (the scale a run-time argument, so one compiled primitive
     * serves every value); dense C-ordered fp32 arrays of one shape, {@code out} may be {@code a}.
     */
    static void scaledSubtract(INDArray a, float scale, INDArray b, INDArray out) {
        requireFloat(a, b, out);
        long[] key = shapeKey(SCALED_SUB, a);
        INDArray s = Nd4j.scalar(scale);
        run(key, k -> new Primitive(k, Dnnl::scaledSubDesc, DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST, SRC_0_SCALE),
                c(a), c(b), c(out), s);
    }

    private static dnnl_primitive_desc scaledSubDesc(long[] k, dnnl_primitive_attr attr) {
        check(dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_SRC_0, 0), "setting a source scale");
        dnnl_memory_desc md = dense(k);
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        check(dnnl_binary_primitive_desc_create(pd, ENGINE, dnnl_binary_sub, md, md, md, attr),
                "creating a scaled subtraction over " + Arrays.toString(Arrays.copyOfRange(k, 2, k.length)));
        destroy(md);
        return pd;
    }

    private static void binary(int alg, INDArray a, INDArray b, INDArray out, float sum) {
        requireFloat(a, b, out);
        int r = out.rank();
        long[] key = new long[4 + 6 * r];
        key[0] = BINARY;
        key[1] = alg;
        key[2] = Float.floatToIntBits(sum);
        key[3] = r;
        put(key, 4, a, false, r);
        put(key, 4 + 2 * r, b, false, r);
        put(key, 4 + 4 * r, out, false, r);
        run(key, k -> new Primitive(k, Dnnl::binaryDesc, DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST), a, b, out);
    }

    private static dnnl_primitive_desc binaryDesc(long[] k, dnnl_primitive_attr attr) {
        int r = (int) k[3];
        float sum = Float.intBitsToFloat((int) k[2]);
        if (sum != 0f) {
            postOps(attr, po -> check(dnnl_post_ops_append_sum(po, sum, 0, dnnl_data_type_undef), "adding a sum post-op"));
        }
        dnnl_memory_desc a = strided(k, 4, r);
        dnnl_memory_desc b = strided(k, 4 + 2 * r, r);
        dnnl_memory_desc dst = strided(k, 4 + 4 * r, r);
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        check(dnnl_binary_primitive_desc_create(pd, ENGINE, (int) k[1], a, b, dst, attr),
                "creating a binary op over " + Arrays.toString(Arrays.copyOfRange(k, 4 + 4 * r, 4 + 5 * r)));
        destroy(a, b, dst);
        return pd;
    }

    private static void rowwise(long op, INDArray x, INDArray out) {
        requireFloat(x, x, out);
        long[] key = shapeKey(op, x);
        run(key, k -> new Primitive(k, Dnnl::softmaxDesc, DNNL_ARG_SRC, DNNL_ARG_DST), c(x), c(out));
    }

    private static void run(long[] key, Function<long[], Primitive> make, INDArray... arrays) {
        PerThread local = LOCAL.get();
        local.primitives.computeIfAbsent(new Key(key), k -> make.apply(k.values)).run(local.stream, arrays);
    }

    private static long[] shapeKey(long op, INDArray x) {
        long[] key = new long[2 + x.rank()];
        key[0] = op;
        key[1] = x.rank();
        System.arraycopy(x.shape(), 0, key, 2, x.rank());
        return key;
    }

    /** Sizes then strides of {@code x} as op(x), into {@code key} from {@code at}. */
    private static void put(long[] key, int at, INDArray x, boolean trans, int r) {
        for (int i = 0; i < r; i++) {
            int j = trans && i >= r - 2 ? (2 * r - 3) - i : i;
            key[at + i] = x.size(j);
            key[at + r + i] = x.stride(j);
        }
    }

    private static dnnl_primitive_desc matmulDesc(long[] k, dnnl_primitive_attr attr) {
        int r = (int) (k.length - 2) / 6;
        if (k[1] == 1) {
            check(dnnl_primitive_attr_set_fpmath_mode(attr, dnnl_fpmath_mode_bf16), "setting fpmath mode bf16");
        }
        dnnl_memory_desc src = strided(k, 2, r);
        dnnl_memory_desc weights = strided(k, 2 + 2 * r, r);
        dnnl_memory_desc dst = strided(k, 2 + 4 * r, r);
        if (k[0] == MATMUL_MUL_ADD) {
            // dst = (src·weights) ⊙ c + dst: a binary multiply by a tensor of dst's layout, then a sum
            postOps(attr, po -> {
                check(dnnl_post_ops_append_binary(po, dnnl_binary_mul, dst), "adding a binary post-op");
                check(dnnl_post_ops_append_sum(po, 1f, 0, dnnl_data_type_undef), "adding a sum post-op");
            });
        }
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        check(dnnl_matmul_primitive_desc_create(pd, ENGINE, src, weights, null, dst, attr),
                "creating a matmul for " + Arrays.toString(Arrays.copyOfRange(k, 2, 2 + r)) + "·"
                        + Arrays.toString(Arrays.copyOfRange(k, 2 + 2 * r, 2 + 3 * r)));
        destroy(src, weights, dst);
        return pd;
    }

    /** Sets on {@code attr} the post-ops that {@code append} adds to a fresh list (the attributes keep a copy). */
    private static void postOps(dnnl_primitive_attr attr, Consumer<dnnl_post_ops> append) {
        dnnl_post_ops po = new dnnl_post_ops();
        check(dnnl_post_ops_create(po), "creating post-ops");
        try {
            append.accept(po);
            check(dnnl_primitive_attr_set_post_ops(attr, po), "setting post-ops");
        } finally {
            dnnl_post_ops_destroy(po);
        }
    }

    private static dnnl_primitive_desc softmaxDesc(long[] k, dnnl_primitive_attr attr) {
        dnnl_memory_desc md = dense(k);
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        check(dnnl_softmax_forward_primitive_desc_create(pd, ENGINE, dnnl_forward_inference,
                k[0] == LOG_SOFTMAX ? dnnl_softmax_log : dnnl_softmax_accurate, md, md, (int) k[1] - 1, attr),
                "creating a softmax over " + Arrays.toString(Arrays.copyOfRange(k, 2, k.length)));
        destroy(md);
        return pd;
    }

    private static dnnl_primitive_desc softmaxBackwardDesc(long[] k, dnnl_primitive_attr attr) {
        dnnl_memory_desc md = dense(k);
        int axis = (int) k[1] - 1;
        dnnl_primitive_desc hint = new dnnl_primitive_desc();
        check(dnnl_softmax_forward_primitive_desc_create(hint, ENGINE, dnnl_forward_training, dnnl_softmax_accurate,
                md, md, axis, null), "creating a softmax");
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        check(dnnl_softmax_backward_primitive_desc_create(pd, ENGINE, dnnl_softmax_accurate, md, md, md, axis, hint,
                attr), "creating a softmax backward over " + Arrays.toString(Arrays.copyOfRange(k, 2, k.length)));
        dnnl_primitive_desc_destroy(hint);
        destroy(md);
        return pd;
    }

    /** exp, or swish with alpha 1 (SiLU). */
    private static dnnl_primitive_desc eltwiseDesc(long[] k, dnnl_primitive_attr attr) {
        dnnl_memory_desc md = dense(k);
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        boolean exp = k[0] == EXP;
        check(dnnl_eltwise_forward_primitive_desc_create(pd, ENGINE, dnnl_forward_training,
                exp ? dnnl_eltwise_exp : dnnl_eltwise_swish, md, md, exp ? 0f : 1f, 0f, attr),
                "creating an element-wise op over " + Arrays.toString(Arrays.copyOfRange(k, 2, k.length)));
        destroy(md);
        return pd;
    }

    private static dnnl_primitive_desc swishBackwardDesc(long[] k, dnnl_primitive_attr attr) {
        dnnl_memory_desc md = dense(k);
        dnnl_primitive_desc hint = new dnnl_primitive_desc();
        check(dnnl_eltwise_forward_primitive_desc_create(hint, ENGINE, dnnl_forward_training, dnnl_eltwise_swish, md, md,
                1f, 0f, null), "creating a swish");
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        check(dnnl_eltwise_backward_primitive_desc_create(pd, ENGINE, dnnl_eltwise_swish, md, md, md, 1f, 0f, hint,
                attr), "creating a swish backward over " + Arrays.toString(Arrays.copyOfRange(k, 2, k.length)));
        dnnl_primitive_desc_destroy(hint);
        destroy(md);
        return pd;
    }

    /** Compiled primitives a thread keeps; the least recently used beyond this are destroyed. */
    static final int CACHE_SIZE = 256;

    /**
     * A thread's stream and primitives: oneDNN streams, and primitives with their scratchpads, are not shared.
     * Bounded, least recently used first out: with padded batches of varying length every shape compiles its
     * own primitives, which would otherwise pile up (JIT code and scratchpads) over a long run.
     */
    private static final class PerThread {
        final dnnl_stream stream = new dnnl_stream();
        final Map<Key, Primitive> primitives = new LinkedHashMap<>(64, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Key, Primitive> eldest) {
                if (size() > CACHE_SIZE) {
                    eldest.getValue().destroy();
                    return true;
                }
                return false;
            }
        };

        PerThread() {
            check(dnnl_stream_create(stream, ENGINE, dnnl_stream_default_flags), "creating a stream");
        }
    }

    /** How many primitives this thread holds (for tests). */
    static int cachedPrimitives() {
        return LOCAL.get().primitives.size();
    }

    private record Key(long[] values) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Key other && Arrays.equals(values, other.values);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(values);
        }
    }

    /** Makes a primitive descriptor from a cache key, with the given attributes. */
    private interface Describer {
        dnnl_primitive_desc describe(long[] key, dnnl_primitive_attr attr);
    }

    /** One compiled primitive, with one memory object per argument whose data handle is rebound per call. */
    private static final class Primitive {
        final dnnl_primitive primitive = new dnnl_primitive();
        final dnnl_memory[] memories;
        final dnnl_exec_arg_t args;
        final int nargs;
        final BytePointer scratch;
        final dnnl_memory scratchMem;

        Primitive(long[] key, Describer describer, int... argKinds) {
            dnnl_primitive_attr attr = new dnnl_primitive_attr();
            check(dnnl_primitive_attr_create(attr), "creating attributes");
            check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "setting scratchpad mode");
            dnnl_primitive_desc pd = describer.describe(key, attr);
            check(dnnl_primitive_create(primitive, pd), "compiling a primitive");
            memories = new dnnl_memory[argKinds.length];
            args = new dnnl_exec_arg_t(argKinds.length + 1);
            Pointer none = null;
            for (int i = 0; i < argKinds.length; i++) {
                memories[i] = new dnnl_memory();
                // a run-time scale is one fp32 value; every other argument's layout is the primitive's
                dnnl_memory_desc md = (argKinds[i] & DNNL_ARG_ATTR_SCALES) != 0 ? scalarDesc()
                        : dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, argKinds[i]);
                check(dnnl_memory_create(memories[i], md, ENGINE, none), "creating memory");
                if ((argKinds[i] & DNNL_ARG_ATTR_SCALES) != 0) {
                    dnnl_memory_desc_destroy(md);
                }
                args.position(i).arg(argKinds[i]).memory(memories[i]);
            }
            dnnl_memory_desc scratchMd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
            long scratchBytes = scratchMd == null || scratchMd.isNull() ? 0 : dnnl_memory_desc_get_size(scratchMd);
            if (scratchBytes > 0) {
                scratch = new BytePointer(scratchBytes);
                scratchMem = new dnnl_memory();
                check(dnnl_memory_create(scratchMem, scratchMd, ENGINE, scratch), "creating the scratchpad");
                args.position(argKinds.length).arg(DNNL_ARG_SCRATCHPAD).memory(scratchMem);
                nargs = argKinds.length + 1;
            } else {
                scratch = null;
                scratchMem = null;
                nargs = argKinds.length;
            }
            args.position(0);
            dnnl_primitive_desc_destroy(pd);
            dnnl_primitive_attr_destroy(attr);
        }

        /** Frees the compiled primitive, its memory objects and its scratchpad. */
        void destroy() {
            dnnl_primitive_destroy(primitive);
            for (dnnl_memory m : memories) {
                dnnl_memory_destroy(m);
            }
            if (scratch != null) {
                dnnl_memory_destroy(scratchMem);
                scratch.deallocate();
            }
            args.deallocate();
        }

        void run(dnnl_stream stream, INDArray... arrays) {
            for (int i = 0; i < arrays.length; i++) {
                check(dnnl_memory_set_data_handle(memories[i], address(arrays[i])), "binding an array");
            }
            check(dnnl_primitive_execute(primitive, stream, nargs, args), "running a primitive");
            check(dnnl_stream_wait(stream), "waiting for a primitive");
        }
    }

    /** An fp32 memory descriptor of rank {@code r}: sizes at {@code k[at..]}, strides right after them. */
    private static dnnl_memory_desc strided(long[] k, int at, int r) {
        dnnl_memory_desc md = new dnnl_memory_desc();
        long[] sizes = Arrays.copyOfRange(k, at, at + r);
        check(dnnl_memory_desc_create_with_strides(md, r, sizes, dnnl_f32, Arrays.copyOfRange(k, at + r, at + 2 * r)),
                "describing an array " + Arrays.toString(sizes));
        return md;
    }

    /** A dense C-ordered fp32 descriptor for the shape in a shape key ({@code k[1]} = rank, sizes after). */
    private static dnnl_memory_desc dense(long[] k) {
        int r = (int) k[1];
        long[] sizes = Arrays.copyOfRange(k, 2, 2 + r);
        long[] strides = new long[r];
        long s = 1;
        for (int i = r - 1; i >= 0; i--) {
            strides[i] = s;
            s *= sizes[i];
        }
        dnnl_memory_desc md = new dnnl_memory_desc();
        check(dnnl_memory_desc_create_with_strides(md, r, sizes, dnnl_f32, strides),
                "describing an array " + Arrays.toString(sizes));
        return md;
    }

    /** One fp32 value: the descriptor of a run-time scale. */
    private static dnnl_memory_desc scalarDesc() {
        dnnl_memory_desc md = new dnnl_memory_desc();
        check(dnnl_memory_desc_create_with_strides(md, 1, new long[] {1}, dnnl_f32, new long[] {1}), "describing a scale");
        return md;
    }

    private static void destroy(dnnl_memory_desc... mds) {
        for (dnnl_memory_desc md : mds) {
            dnnl_memory_desc_destroy(md);
        }
    }

    private static void requireFloat(INDArray a, INDArray b, INDArray out) {
        if (a.dataType() != DataType.FLOAT || b.dataType() != DataType.FLOAT || out.dataType() != DataType.FLOAT) {
            throw new IllegalArgumentException("oneDNN kernels take fp32 arrays, got " + a.dataType() + ", "
                    + b.dataType() + " -> " + out.dataType());
        }
    }

    /** {@code x} itself when it is a dense C-ordered array (what the row-wise kernels assume), else an error. */
    private static INDArray c(INDArray x) {
        if (!Nd4jKernels.isDense(x)) {
            throw new IllegalArgumentException("oneDNN row-wise kernels take dense C-ordered arrays, got a view "
                    + Arrays.toString(x.shape()) + " with strides " + Arrays.toString(x.stride()));
        }
        return x;
    }

    /** The first element of {@code x}: its buffer's address plus its view offset, as a plain pointer. */
    private static Pointer address(INDArray x) {
        return new Address(x.data().address() + x.offset() * Float.BYTES);
    }

    /** A pointer at a fixed address (JavaCPP adds a pointer's position to it, in bytes for void*: kept at 0). */
    private static final class Address extends Pointer {
        Address(long address) {
            this.address = address;
        }
    }

    private static void check(int status, String what) {
        if (status != dnnl_success) {
            throw new IllegalStateException("oneDNN failed " + what + " (status " + status + ")");
        }
    }
}
