package dev.collie.core.tensor;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.dnnl.dnnl_engine;
import org.bytedeco.dnnl.dnnl_exec_arg_t;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_attr;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.bytedeco.dnnl.dnnl_stream;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

import static org.bytedeco.dnnl.global.dnnl.*;

/**
 * fp32 matrix products computed by oneDNN 3.3 with {@code fpmath_mode = bf16}: the inputs are rounded to
 * bfloat16 inside the kernel, products accumulate in fp32, tensors in and out stay fp32 (what PyTorch's
 * {@code float32_matmul_precision = "medium"} does on CPUs). On CPUs with AMX this runs 4–5× faster than
 * the fp32 GEMM (docs/benchmarks.md); elsewhere oneDNN uses AVX-512 bf16 or plain fp32 code.
 *
 * <p>ND4J's own oneDNN (v2.3) has no AMX code, hence this second native library, called on ND4J's
 * buffers without copies. Each thread keeps its own stream and primitives (one per shape and layout), with
 * user-managed scratchpads, so worker threads may multiply side by side. Loaded only when a run asks for
 * {@link MatmulPrecision#BF16}; {@link #unavailableReason()} says why it cannot be used.
 */
final class DnnlMatmul {
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

    private DnnlMatmul() {
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
        return "isa 0x" + Integer.toHexString(isa);
    }

    /**
     * {@code out = op(a)·op(b)} for fp32 arrays of rank 2, or batched over the leading dimensions for rank 3
     * and 4 (the same batch shape on both sides), any strides; {@code bf16} picks fpmath mode bf16, else
     * the products are exact fp32 ones.
     */
    static void multiply(INDArray a, INDArray b, boolean transA, boolean transB, INDArray out, boolean bf16) {
        if (a.dataType() != DataType.FLOAT || b.dataType() != DataType.FLOAT || out.dataType() != DataType.FLOAT) {
            throw new IllegalArgumentException("oneDNN matmul takes fp32 arrays, got " + a.dataType() + ", "
                    + b.dataType() + " -> " + out.dataType());
        }
        int r = out.rank();
        // each operand as its op(x) view: a transpose only swaps the last two sizes and strides
        long[] key = new long[2 + 6 * r];
        key[0] = r;
        key[1] = bf16 ? 1 : 0;
        put(key, 2, a, transA, r);
        put(key, 2 + 2 * r, b, transB, r);
        put(key, 2 + 4 * r, out, false, r);
        PerThread local = LOCAL.get();
        Primitive p = local.primitives.computeIfAbsent(new Key(key), x -> new Primitive(x.dims));
        p.run(local.stream, a, b, out);
    }

    /** Sizes then strides of {@code x} as op(x), into {@code key} from {@code at}. */
    private static void put(long[] key, int at, INDArray x, boolean trans, int r) {
        for (int i = 0; i < r; i++) {
            int j = trans && i >= r - 2 ? (2 * r - 3) - i : i;
            key[at + i] = x.size(j);
            key[at + r + i] = x.stride(j);
        }
    }

    /** A thread's stream and primitives: oneDNN streams, and primitives with their scratchpads, are not shared. */
    private static final class PerThread {
        final dnnl_stream stream = new dnnl_stream();
        final Map<Key, Primitive> primitives = new HashMap<>();

        PerThread() {
            check(dnnl_stream_create(stream, ENGINE, dnnl_stream_default_flags), "creating a stream");
        }
    }

    private record Key(long[] dims) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Key other && Arrays.equals(dims, other.dims);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(dims);
        }
    }

    /** One compiled matmul for a shape and layout, with memory objects whose data handles change per call. */
    private static final class Primitive {
        final dnnl_primitive primitive = new dnnl_primitive();
        final dnnl_memory src = new dnnl_memory();
        final dnnl_memory weights = new dnnl_memory();
        final dnnl_memory dst = new dnnl_memory();
        final dnnl_exec_arg_t args = new dnnl_exec_arg_t(4);
        final int nargs;
        final BytePointer scratch;

        Primitive(long[] d) {
            int r = (int) d[0];
            dnnl_memory_desc srcMd = desc(d, 2, r);
            dnnl_memory_desc weightsMd = desc(d, 2 + 2 * r, r);
            dnnl_memory_desc dstMd = desc(d, 2 + 4 * r, r);
            dnnl_primitive_attr attr = new dnnl_primitive_attr();
            check(dnnl_primitive_attr_create(attr), "creating attributes");
            if (d[1] == 1) {
                check(dnnl_primitive_attr_set_fpmath_mode(attr, dnnl_fpmath_mode_bf16), "setting fpmath mode bf16");
            }
            check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "setting scratchpad mode");
            dnnl_primitive_desc pd = new dnnl_primitive_desc();
            check(dnnl_matmul_primitive_desc_create(pd, ENGINE, srcMd, weightsMd, null, dstMd, attr),
                    "creating a matmul for " + Arrays.toString(Arrays.copyOfRange(d, 2, 2 + r)) + "·"
                            + Arrays.toString(Arrays.copyOfRange(d, 2 + 2 * r, 2 + 3 * r)));
            check(dnnl_primitive_create(primitive, pd), "compiling the matmul");
            Pointer none = null;
            check(dnnl_memory_create(src, srcMd, ENGINE, none), "creating memory");
            check(dnnl_memory_create(weights, weightsMd, ENGINE, none), "creating memory");
            check(dnnl_memory_create(dst, dstMd, ENGINE, none), "creating memory");
            args.position(0).arg(DNNL_ARG_SRC).memory(src);
            args.position(1).arg(DNNL_ARG_WEIGHTS).memory(weights);
            args.position(2).arg(DNNL_ARG_DST).memory(dst);
            dnnl_memory_desc scratchMd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
            long scratchBytes = scratchMd == null || scratchMd.isNull() ? 0 : dnnl_memory_desc_get_size(scratchMd);
            if (scratchBytes > 0) {
                scratch = new BytePointer(scratchBytes);
                dnnl_memory scratchMem = new dnnl_memory();
                check(dnnl_memory_create(scratchMem, scratchMd, ENGINE, scratch), "creating the scratchpad");
                args.position(3).arg(DNNL_ARG_SCRATCHPAD).memory(scratchMem);
                nargs = 4;
            } else {
                scratch = null;
                nargs = 3;
            }
            args.position(0);
            dnnl_primitive_desc_destroy(pd);
            dnnl_primitive_attr_destroy(attr);
            dnnl_memory_desc_destroy(srcMd);
            dnnl_memory_desc_destroy(weightsMd);
            dnnl_memory_desc_destroy(dstMd);
        }

        void run(dnnl_stream stream, INDArray a, INDArray b, INDArray out) {
            check(dnnl_memory_set_data_handle(src, address(a)), "binding the input");
            check(dnnl_memory_set_data_handle(weights, address(b)), "binding the input");
            check(dnnl_memory_set_data_handle(dst, address(out)), "binding the output");
            check(dnnl_primitive_execute(primitive, stream, nargs, args), "running the matmul");
            check(dnnl_stream_wait(stream), "waiting for the matmul");
        }
    }

    /** An fp32 memory descriptor of rank {@code r}: sizes at {@code d[at..]}, strides right after them. */
    private static dnnl_memory_desc desc(long[] d, int at, int r) {
        dnnl_memory_desc md = new dnnl_memory_desc();
        long[] sizes = Arrays.copyOfRange(d, at, at + r);
        check(dnnl_memory_desc_create_with_strides(md, r, sizes, dnnl_f32, Arrays.copyOfRange(d, at + r, at + 2 * r)),
                "describing an array " + Arrays.toString(sizes));
        return md;
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
