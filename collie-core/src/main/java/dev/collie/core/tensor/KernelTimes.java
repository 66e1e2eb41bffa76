package dev.collie.core.tensor;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * Thread time spent in each {@link Kernels} method while a recording is open ({@code collie bench --kernel-times}):
 * {@link Kernels#get()} hands out a timing proxy until {@link #stop()}, so a benchmark can say where its step goes by
 * op, in every worker thread, without a profiler's sampling bias. Products are split into rank-2 (the linears) and
 * batched (attention). The proxy costs a reflective call per kernel, so times are for breakdowns, not for speed.
 */
public final class KernelTimes {
    private static final Map<String, LongAdder> NANOS = new ConcurrentHashMap<>();
    private static final Map<String, LongAdder> CALLS = new ConcurrentHashMap<>();

    private KernelTimes() {
    }

    /** Clears the times and routes every kernel call through the timing proxy. */
    public static synchronized void start() {
        NANOS.clear();
        CALLS.clear();
        Kernels inner = Backends.kernels();
        Backends.setKernelsOverride((Kernels) Proxy.newProxyInstance(Kernels.class.getClassLoader(),
                new Class<?>[] {Kernels.class}, (proxy, method, args) -> {
                    String name = method.getName();
                    if (name.equals("matmul")) {
                        name = ((org.nd4j.linalg.api.ndarray.INDArray) args[0]).rank() > 2 ? "matmul (batched)"
                                : "matmul (rank 2)";
                    }
                    long t = System.nanoTime();
                    try {
                        return method.invoke(inner, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    } finally {
                        NANOS.computeIfAbsent(name, k -> new LongAdder()).add(System.nanoTime() - t);
                        CALLS.computeIfAbsent(name, k -> new LongAdder()).increment();
                    }
                }));
    }

    /** Ends the recording; returns, by kernel method, {@code {thread nanoseconds, calls}} summed over all threads. */
    public static synchronized Map<String, long[]> stop() {
        Backends.setKernelsOverride(null);
        Map<String, long[]> out = new TreeMap<>();
        NANOS.forEach((k, v) -> out.put(k, new long[] {v.sum(), CALLS.get(k).sum()}));
        return out;
    }
}
