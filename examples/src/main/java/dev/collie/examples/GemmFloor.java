package dev.collie.examples;

import dev.collie.core.tensor.Backends;
import dev.collie.core.tensor.Kernels;
import dev.collie.core.tensor.MatmulPrecision;
import dev.collie.examples.cli.BenchShape;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The GEMM-only floor of one LLaMA training step: times <em>only</em> the matrix products of one forward +
 * backward, in the shapes, transpose flags and call form ({@code Nd4j.exec(new Mmul(a, b, out, transposes))},
 * the oneDNN path of {@code Nd4jKernels.matmul}) that collie runs them, with nothing else (no element-wise
 * ops, softmax, loss, optimizer, allocation or copies).
 *
 * <p>By default it times ND4J's {@code Mmul} for every product. With {@code --kernels} every product goes through
 * collie's {@code Kernels.matmul} into its preallocated output, exactly as a step calls it: oneDNN 3.3 for the
 * fp32 batched (attention) products and, with {@code --matmul-precision bf16}, for all of them (bf16 inputs, fp32
 * accumulation and arrays); {@code tools/bench/gemm_floor.sh} uses that mode.
 *
 * <p>Why: whatever collie does around the GEMMs, a step cannot take less time than its GEMMs on these
 * kernels. If this floor is above (PyTorch step time / 1.5), "1.5× PyTorch" is out of reach without faster
 * GEMMs (or fewer FLOPs). {@code tools/bench/gemm_floor.sh} puts the floor beside PyTorch's step.
 *
 * <p>The list, per decoder layer: q/k/v/o and gate/up/down projections ({@code x · Wᵀ}, W {@code [out, in]}
 * as {@link dev.collie.core.nn.Linear}), the batched attention products {@code q·kᵀ} and {@code p·v} on
 * heads {@code [b, kv, g·t, d]} (as {@link dev.collie.core.nn.Attention}); the untied LM head; backward, for
 * every linear {@code dX = dY·W} and {@code dW = dYᵀ·X}, for attention {@code dP = dO·vᵀ}, {@code dV = pᵀ·dO},
 * {@code dQ = dS·k}, {@code dK = dSᵀ·q}. Each layer has its own weights, activations and outputs (allocated
 * once, random, reused every pass), so caches see what a real step's working set gives them.
 *
 * <p>Two execution modes, each after {@code --warmup} passes, median of {@code --steps} passes (fewer where a
 * pass is so slow that they would take more than {@code --budget} seconds, as bf16's batched products are):
 * <ul>
 * <li>workers: one thread per core, ND4J's op threads set to 1 as {@code StepRunner} does for
 * {@code collie bench}'s default, each thread runs the whole list on its share of the batch's rows; the time
 * is the wall time until the last one finishes (that setting does not bound oneDNN's OpenMP threads: a GEMM
 * still uses all cores unless {@code OMP_NUM_THREADS=1}, which measured within noise here);</li>
 * <li>one stream: one thread, ops on all cores, the whole batch.</li>
 * </ul>
 *
 * <pre>java -Xmx1g -cp examples/target/collie.jar dev.collie.examples.GemmFloor --hidden 288 --layers 6 \
 *     --heads 6 --kv-heads 6 --intermediate 768 --vocab 32000 --batch 4 --seq 256 --steps 8 --dtype float</pre>
 *
 * {@code --dtype bf16}: BFLOAT16 inputs and outputs throughout (ND4J's {@code Mmul} output type is its input
 * type). ND4J 1.0.0-M2.1 sends only rank-2 products to oneDNN (v2.3: bf16 on AVX-512 without AMX, which
 * crashed the JVM when enabled with {@code ONEDNN_MAX_CPU_ISA=AVX512_CORE_AMX}); its
 * batched rank-3/4 products are its own code, and in bf16 a generic loop below 1 GFLOP/s, so
 * {@code --attention-fp32} keeps the attention products in fp32 for the floor of a usable bf16 plan.
 *
 * <p>The last line(s): {@code gemm floor (<dtype>, best mode): X ms/step = Y tokens/s}; a per-GEMM table per
 * mode shows where the time goes ({@code --no-breakdown}: without it).
 *
 * <p>Why one class of ~500 lines: a benchmark main that replays every matrix product of one training step of both
 * configs, side by side with the table it prints; nothing in it is reused elsewhere.
 */
@Command(name = "GemmFloor", mixinStandardHelpOptions = true,
        description = "Time only the GEMMs of one LLaMA training step (forward + backward) as collie runs them.")
public final class GemmFloor implements Callable<Integer> {
    @Mixin BenchShape shape;
    @Option(names = "--steps", defaultValue = "8", description = "timed passes per mode (median)") int steps;
    @Option(names = "--warmup", defaultValue = "2", description = "untimed passes per mode first") int warmup;
    @Option(names = "--dtype", defaultValue = "float", description = "float, bf16 or both") String dtype;
    @Option(names = "--workers", defaultValue = "0", description = "threads of the workers mode (0: one per core)")
    int workers;
    @Option(names = "--mode", defaultValue = "both", description = "workers, stream or both") String mode;
    @Option(names = "--no-breakdown", description = "skip the per-GEMM table") boolean noBreakdown;
    @Option(names = "--attention-fp32", description = "with bf16: keep the batched attention GEMMs in fp32"
            + " (ND4J runs batched bf16 matmuls in a slow generic loop, not oneDNN)") boolean attentionFp32;
    @Option(names = "--kernels", description = "run every product through collie's Kernels.matmul (what a training step"
            + " calls: oneDNN 3.3 for batched fp32 products and, with --matmul-precision bf16, for all) instead of ND4J's"
            + " Mmul") boolean kernels;
    @Option(names = "--matmul-precision", paramLabel = "P", defaultValue = "fp32", description = "with --kernels:"
            + " fp32 or bf16 (bf16 inputs, fp32 accumulation and arrays)") String precision;
    @Option(names = "--budget", defaultValue = "60", description = "seconds per mode: after one warm-up pass, fewer"
            + " warm-ups and timed passes where --steps of them would take longer (one pass over it: that pass is the"
            + " measurement)") double budget;

    private final int cores = Runtime.getRuntime().availableProcessors();

    public static void main(String[] args) {
        Backends.configure(Runtime.getRuntime().availableProcessors());
        System.exit(new CommandLine(new GemmFloor()).execute(args));
    }

    /** One GEMM of the step: {@code out = op(a) · op(b)}, {@code op} transposing the last two dims where asked. */
    private record Gemm(String name, INDArray a, INDArray b, INDArray out, boolean transA, boolean transB, double flops,
                        boolean viaKernels) {
        void run() {
            if (viaKernels) {
                Kernels.get().matmul(a, b, transA, transB, out);
            } else {
                Nd4j.exec(new Mmul(a, b, out, MMulTranspose.builder().transposeA(transA).transposeB(transB).build()));
            }
        }

        String shape() {
            return Arrays.toString(a.shape()) + (transA ? "ᵀ" : "") + "·" + Arrays.toString(b.shape()) + (transB ? "ᵀ" : "");
        }
    }

    /** The per-layer weights, shared by all workers as the model is. */
    private static final class Weights {
        final INDArray[] wq;
        final INDArray[] wk;
        final INDArray[] wv;
        final INDArray[] wo;
        final INDArray[] wg;
        final INDArray[] wu;
        final INDArray[] wd;
        final INDArray head;

        Weights(Alloc al, int layers, long h, long q, long kv, long inter, long vocab) {
            wq = new INDArray[layers];
            wk = new INDArray[layers];
            wv = new INDArray[layers];
            wo = new INDArray[layers];
            wg = new INDArray[layers];
            wu = new INDArray[layers];
            wd = new INDArray[layers];
            for (int l = 0; l < layers; l++) {
                wq[l] = al.rand(q, h);
                wk[l] = al.rand(kv, h);
                wv[l] = al.rand(kv, h);
                wo[l] = al.rand(h, q);
                wg[l] = al.rand(inter, h);
                wu[l] = al.rand(inter, h);
                wd[l] = al.rand(h, inter);
            }
            head = al.rand(vocab, h);
        }
    }

    /** Allocates arrays of one dtype and remembers them, to report their size and free them together. */
    private static final class Alloc {
        final DataType dt;
        final List<INDArray> arrays = new ArrayList<>();
        long bytes;

        Alloc(DataType dt) {
            this.dt = dt;
        }

        /** An input: random values in [-0.5, 0.5) (small, so bf16 and fp32 sums stay ordinary numbers). */
        INDArray rand(long... shape) {
            INDArray f = Nd4j.rand(DataType.FLOAT, shape).subi(0.5);
            INDArray a = dt == DataType.FLOAT ? f : f.castTo(dt);
            if (a != f) {
                f.close();
            }
            return keep(a);
        }

        /** An output: written by its GEMM every pass (touched once here, so no pass pays first-touch faults). */
        INDArray out(long... shape) {
            return keep(Nd4j.zeros(dt, shape));
        }

        private INDArray keep(INDArray a) {
            arrays.add(a);
            bytes += a.length() * dt.width();
            return a;
        }

        void close() {
            for (INDArray a : arrays) {
                a.close();
            }
            arrays.clear();
        }
    }

    /** The GEMMs of one step on {@code rows} rows of {@code seq} tokens, in collie's order. */
    private List<Gemm> stepGemms(Weights w, Alloc al, Alloc att, int rows) {
        int kvh = shape.kvHeads();
        long d = shape.hidden() / shape.heads();
        long q = shape.heads() * d;
        long kv = kvh * d;
        long g = shape.heads() / kvh;
        long n = (long) rows * shape.seq();
        long h = shape.hidden();
        long t = shape.seq();
        long inter = shape.intermediate();
        List<Gemm> list = new ArrayList<>();
        // per layer: the arrays forward saves (they are backward's inputs too)
        INDArray[] xa = new INDArray[shape.layers()];
        INDArray[] xm = new INDArray[shape.layers()];
        INDArray[] qh = new INDArray[shape.layers()];
        INDArray[] kh = new INDArray[shape.layers()];
        INDArray[] vh = new INDArray[shape.layers()];
        INDArray[] p = new INDArray[shape.layers()];
        INDArray[] oRows = new INDArray[shape.layers()];
        INDArray[] hmid = new INDArray[shape.layers()];
        for (int l = 0; l < shape.layers(); l++) {
            xa[l] = al.rand(n, h);                       // input_layernorm output
            linear(list, "q_proj", xa[l], w.wq[l], al.out(n, q));
            linear(list, "k_proj", xa[l], w.wk[l], al.out(n, kv));
            linear(list, "v_proj", xa[l], w.wv[l], al.out(n, kv));
            qh[l] = att.rand(rows, kvh, g * t, d);           // rotated, scaled, as heads [b, kv, g·t, d]
            kh[l] = att.rand(rows, kvh, t, d);
            vh[l] = att.rand(rows, kvh, t, d);
            batched(list, "attn q·kᵀ", qh[l], kh[l], att.out(rows, kvh, g * t, t), false, true);
            p[l] = att.rand(rows, kvh, g * t, t);            // softmax(masked scores)
            batched(list, "attn p·v", p[l], vh[l], att.out(rows, kvh, g * t, d), false, false);
            oRows[l] = al.rand(n, q);                    // heads back to rows
            linear(list, "o_proj", oRows[l], w.wo[l], al.out(n, h));
            xm[l] = al.rand(n, h);                       // post_attention_layernorm output
            linear(list, "gate_proj", xm[l], w.wg[l], al.out(n, inter));
            linear(list, "up_proj", xm[l], w.wu[l], al.out(n, inter));
            hmid[l] = al.rand(n, inter);                 // silu(gate) * up
            linear(list, "down_proj", hmid[l], w.wd[l], al.out(n, h));
        }
        INDArray xf = al.rand(n, h);                     // final norm output
        INDArray logits = al.out(n, shape.vocab());
        linear(list, "lm_head", xf, w.head, logits);
        // backward: the loss gradient overwrites the logits (CausalLmLoss), so the head's dY is that array
        linearBackward(list, "lm_head", logits, w.head, xf, al.out(n, h), al.out(shape.vocab(), h));
        for (int l = shape.layers() - 1; l >= 0; l--) {
            linearBackward(list, "down_proj", al.rand(n, h), w.wd[l], hmid[l], al.out(n, inter), al.out(h, inter));
            linearBackward(list, "up_proj", al.rand(n, inter), w.wu[l], xm[l], al.out(n, h), al.out(inter, h));
            linearBackward(list, "gate_proj", al.rand(n, inter), w.wg[l], xm[l], al.out(n, h), al.out(inter, h));
            linearBackward(list, "o_proj", al.rand(n, h), w.wo[l], oRows[l], al.out(n, q), al.out(h, q));
            INDArray dO = att.rand(rows, kvh, g * t, d);
            // the probabilities are recomputed in backward (Attention keeps q, k, v, not p)
            batched(list, "attn q·kᵀ again", qh[l], kh[l], att.out(rows, kvh, g * t, t), false, true);
            batched(list, "attn dP = dO·vᵀ", dO, vh[l], att.out(rows, kvh, g * t, t), false, true);
            batched(list, "attn dV = pᵀ·dO", p[l], dO, att.out(rows, kvh, t, d), true, false);
            INDArray dS = att.rand(rows, kvh, g * t, t);   // softmax backward
            batched(list, "attn dQ = dS·k", dS, kh[l], att.out(rows, kvh, g * t, d), false, false);
            batched(list, "attn dK = dSᵀ·q", dS, qh[l], att.out(rows, kvh, t, d), true, false);
            linearBackward(list, "q_proj", al.rand(n, q), w.wq[l], xa[l], al.out(n, h), al.out(q, h));
            linearBackward(list, "k_proj", al.rand(n, kv), w.wk[l], xa[l], al.out(n, h), al.out(kv, h));
            linearBackward(list, "v_proj", al.rand(n, kv), w.wv[l], xa[l], al.out(n, h), al.out(kv, h));
        }
        return list;
    }

    /** Linear forward {@code y = x · Wᵀ}: x {@code [n, in]}, W {@code [out, in]}. */
    private void linear(List<Gemm> list, String name, INDArray x, INDArray w, INDArray y) {
        list.add(new Gemm(name + " fwd", x, w, y, false, true, 2.0 * x.size(0) * x.size(1) * w.size(0), kernels));
    }

    /** Linear backward as {@code Linear.projectBackward}: {@code dX = dY · W}, then {@code dW = dYᵀ · X}. */
    private void linearBackward(List<Gemm> list, String name, INDArray dy, INDArray w, INDArray x,
                                       INDArray dx, INDArray dw) {
        double f = 2.0 * dy.size(0) * dy.size(1) * x.size(1);
        list.add(new Gemm(name + " dX", dy, w, dx, false, false, f, kernels));
        list.add(new Gemm(name + " dW", dy, x, dw, true, false, f, kernels));
    }

    /** A batched product over the leading dims {@code [b, kv]}. */
    private void batched(List<Gemm> list, String name, INDArray a, INDArray b, INDArray out,
                                boolean transA, boolean transB) {
        int r = a.rank();
        long m = transA ? a.size(r - 1) : a.size(r - 2);
        long k = transA ? a.size(r - 2) : a.size(r - 1);
        long nn = transB ? b.size(r - 2) : b.size(r - 1);
        list.add(new Gemm(name, a, b, out, transA, transB, 2.0 * a.size(0) * a.size(1) * m * k * nn, kernels));
    }

    private static double flops(List<Gemm> list) {
        double f = 0;
        for (Gemm g : list) {
            f += g.flops;
        }
        return f;
    }

    /** Runs the list once, adding each GEMM's time (ns) to {@code ns} when it is not null. */
    private static void pass(List<Gemm> list, long[] ns) {
        for (int i = 0; i < list.size(); i++) {
            long t0 = System.nanoTime();
            list.get(i).run();
            if (ns != null) {
                ns[i] += System.nanoTime() - t0;
            }
        }
    }

    /** Result of one mode: median ms per step and per-GEMM total ns over the timed passes (per part). */
    private record Timing(double medianMs, double minMs, double maxMs, int passes, List<List<Gemm>> parts, long[][] ns) {
    }

    @Override
    public Integer call() throws Exception {
        int kvh = shape.kvHeads();
        if (shape.hidden() % shape.heads() != 0 || shape.heads() % kvh != 0) {
            throw new IllegalArgumentException("heads must divide hidden, and kv-heads must divide heads");
        }
        List<DataType> dts = switch (dtype.toLowerCase(Locale.ROOT)) {
            case "float", "fp32", "float32" -> List.of(DataType.FLOAT);
            case "bf16", "bfloat16" -> List.of(DataType.BFLOAT16);
            case "both" -> List.of(DataType.FLOAT, DataType.BFLOAT16);
            default -> throw new IllegalArgumentException("--dtype: float, bf16 or both, not " + dtype);
        };
        MatmulPrecision mp = MatmulPrecision.parse(precision);
        if (mp != MatmulPrecision.FP32 && !kernels) {
            throw new IllegalArgumentException("--matmul-precision " + precision + " needs --kernels (ND4J's Mmul is fp32)");
        }
        if (kernels && dts.contains(DataType.BFLOAT16)) {
            throw new IllegalArgumentException("--kernels takes fp32 arrays (bf16 products: --matmul-precision bf16)");
        }
        Backends.setMatmulPrecision(mp);
        int w = workers == 0 ? cores : workers;
        int parts = Math.min(w, shape.batch());
        System.out.printf(Locale.ROOT, "gemm floor: hidden %d, layers %d, heads %d/%d, intermediate %d, vocab %d;"
                        + " batch %dx%d; ND4J %s; %d cores; workers mode: %d thread(s) x 1-thread ops%n",
                shape.hidden(), shape.layers(), shape.heads(), kvh, shape.intermediate(), shape.vocab(), shape.batch(),
                shape.seq(), Backends.nativeVariant(), cores, parts);
        double formula = shape.stepFlops();
        Map<String, Double> best = new LinkedHashMap<>();
        for (DataType dt : dts) {
            boolean mixed = dt != DataType.FLOAT && attentionFp32;
            String dn = dt != DataType.FLOAT ? (mixed ? "bf16, attention fp32" : "bf16")
                    : kernels ? "fp32 arrays, " + mp.name().toLowerCase(Locale.ROOT) + " products via Kernels" : "fp32";
            Alloc wAlloc = new Alloc(dt);
            long headDim = shape.hidden() / shape.heads();
            Weights weights = new Weights(wAlloc, shape.layers(), shape.hidden(), shape.heads() * headDim,
                    kvh * headDim, shape.intermediate(), shape.vocab());
            double bestMs = Double.MAX_VALUE;
            String bestMode = "";
            for (String m : modes()) {
                boolean streamMode = m.equals("one stream");
                int np = streamMode ? 1 : parts;
                Alloc al = new Alloc(dt);
                Alloc att = mixed ? new Alloc(DataType.FLOAT) : al;
                List<List<Gemm>> lists = new ArrayList<>();
                for (int pi = 0; pi < np; pi++) {
                    int r0 = (int) ((long) shape.batch() * pi / np);
                    int r1 = (int) ((long) shape.batch() * (pi + 1) / np);
                    lists.add(stepGemms(weights, al, att, r1 - r0));
                }
                double total = 0;
                for (List<Gemm> l : lists) {
                    total += flops(l);
                }
                if (best.isEmpty() && m.equals(modes().get(0))) {
                    System.out.printf(Locale.ROOT, "GEMMs per step: %d (per part); FLOP per step: %.2f GFLOP listed,"
                                    + " %.2f GFLOP by collie bench's formula (%s)%n", lists.get(0).size(), total / 1e9,
                            formula / 1e9, Math.abs(total - formula) <= 1e-9 * formula ? "match" : "MISMATCH");
                }
                // as StepRunner: the cores shared out between the parts
                Backends.ensureOpThreads(Math.max(1, cores / np));
                Timing tm = time(lists);
                double ms = tm.medianMs;
                long bytes = al.bytes + (mixed ? att.bytes : 0);
                System.out.printf(Locale.ROOT, "%s %-10s: %8.1f ms/step (median of %d; min %.1f, max %.1f) = %6.1f GFLOP/s"
                                + " = %7.1f tokens/s  [%d part(s) x %d row(s), %d op thread(s); %.0f MiB of arrays"
                                + " + %.0f MiB weights]%n",
                        dn, m, ms, tm.passes, tm.minMs, tm.maxMs, total / ms / 1e6,
                        (double) shape.batch() * shape.seq() / ms * 1e3, np,
                        shape.batch() / np, Backends.opThreads(), bytes / 1048576.0, wAlloc.bytes / 1048576.0);
                if (!noBreakdown) {
                    breakdown(tm);
                }
                if (ms < bestMs) {
                    bestMs = ms;
                    bestMode = m;
                }
                al.close();
                if (mixed) {
                    att.close();
                }
            }
            wAlloc.close();
            best.put(dn, bestMs);
            System.out.printf(Locale.ROOT, "best %s mode: %s%n", dn, bestMode);
        }
        Backends.ensureOpThreads(cores);
        for (Map.Entry<String, Double> e : best.entrySet()) {
            double ms = e.getValue();
            System.out.printf(Locale.ROOT, "gemm floor (%s, best mode): %.1f ms/step = %.1f tokens/s%n",
                    e.getKey(), ms, (double) shape.batch() * shape.seq() / ms * 1e3);
        }
        return 0;
    }

    private List<String> modes() {
        return switch (mode.toLowerCase(Locale.ROOT)) {
            case "workers" -> List.of("workers");
            case "stream", "one-stream", "one stream" -> List.of("one stream");
            case "both" -> List.of("workers", "one stream");
            default -> throw new IllegalArgumentException("--mode: workers, stream or both, not " + mode);
        };
    }

    /**
     * Warm-up passes, then timed passes of all parts side by side (one thread each). At least one warm-up; where
     * a pass is slow, fewer warm-ups and timed passes (at least one) so that the mode takes about {@code --budget} s;
     * where the first pass alone takes longer than that, it is the only measurement.
     */
    private Timing time(List<List<Gemm>> lists) throws InterruptedException, ExecutionException {
        int np = lists.size();
        long[][] ns = new long[np][];
        for (int i = 0; i < np; i++) {
            ns[i] = new long[lists.get(i).size()];
        }
        ExecutorService pool = np > 1 ? Executors.newFixedThreadPool(np - 1, r -> {
            Thread t = new Thread(r, "gemm-worker");
            t.setDaemon(true);
            return t;
        }) : null;
        try {
            double passSec = 0;
            for (int s = 0; s < Math.max(1, warmup); s++) {
                double ms = parallelPass(pool, lists, s == 0 ? ns : null);
                passSec = ms / 1e3;
                if (s == 0 && passSec > budget) {
                    // one pass alone is over the budget: it is the measurement (oneDNN JIT and first-touch costs
                    // are in it too, a small part of such a pass)
                    System.out.printf(Locale.ROOT, "  (a pass takes %.1f s, over --budget %.0f s: the first pass is"
                            + " the only measurement)%n", passSec, budget);
                    return new Timing(ms, ms, ms, 1, lists, ns);
                }
                if (passSec * (s + 1 + steps) > budget) {
                    break;
                }
            }
            for (long[] a : ns) {
                Arrays.fill(a, 0);
            }
            int n = (int) Math.max(1, Math.min(steps, Math.floor(budget / Math.max(passSec, 1e-9))));
            if (n < steps) {
                System.out.printf(Locale.ROOT, "  (a pass takes %.1f s: %d timed pass(es) instead of %d, to fit --budget %.0f s)%n",
                        passSec, n, steps, budget);
            }
            double[] times = new double[n];
            for (int s = 0; s < n; s++) {
                times[s] = parallelPass(pool, lists, ns);
            }
            Arrays.sort(times);
            return new Timing(times[n / 2], times[0], times[n - 1], n, lists, ns);
        } finally {
            if (pool != null) {
                pool.shutdown();
            }
        }
    }

    /** One pass of every part, part 0 on this thread and the others on the pool; returns the wall time in ms. */
    private static double parallelPass(ExecutorService pool, List<List<Gemm>> lists, long[][] ns)
            throws InterruptedException, ExecutionException {
        long t0 = System.nanoTime();
        List<Future<?>> fs = new ArrayList<>();
        for (int i = 1; i < lists.size(); i++) {
            List<Gemm> l = lists.get(i);
            long[] acc = ns == null ? null : ns[i];
            fs.add(pool.submit(() -> pass(l, acc)));
        }
        pass(lists.get(0), ns == null ? null : ns[0]);
        for (Future<?> f : fs) {
            f.get();
        }
        return (System.nanoTime() - t0) / 1e6;
    }

    /** Time per GEMM kind (summed over layers, mean over passes and over parts), with its share and speed. */
    private void breakdown(Timing tm) {
        Map<String, double[]> byName = new LinkedHashMap<>();   // {ns, flops, calls}
        Map<String, String> shapes = new LinkedHashMap<>();
        double[] byRank = new double[4];                         // {rank-2 ns, rank-2 flops, batched ns, batched flops}
        int np = tm.parts.size();
        for (int pi = 0; pi < np; pi++) {
            List<Gemm> l = tm.parts.get(pi);
            for (int i = 0; i < l.size(); i++) {
                Gemm g = l.get(i);
                double ns = tm.ns[pi][i] / (double) tm.passes / np;
                double[] acc = byName.computeIfAbsent(g.name, k -> new double[3]);
                acc[0] += ns;
                acc[1] += g.flops / np;
                acc[2] += 1.0 / np;
                int r = g.a.rank() == 2 ? 0 : 2;
                byRank[r] += ns;
                byRank[r + 1] += g.flops / np;
                shapes.putIfAbsent(g.name, g.shape());
            }
        }
        double sum = byRank[0] + byRank[2];
        System.out.printf(Locale.ROOT, "  %-18s %-34s %5s %8s %9s %6s %8s%n", "gemm (per part)", "shape a·b", "calls",
                "GFLOP", "ms", "share", "GFLOP/s");
        for (Map.Entry<String, double[]> e : byName.entrySet()) {
            double[] a = e.getValue();
            System.out.printf(Locale.ROOT, "  %-18s %-34s %5.0f %8.3f %9.2f %5.1f%% %8.1f%n", e.getKey(),
                    shapes.get(e.getKey()), a[2], a[1] / 1e9, a[0] / 1e6, 100 * a[0] / sum, a[1] / a[0]);
        }
        System.out.printf(Locale.ROOT, "  linears (rank 2) %.1f ms at %.1f GFLOP/s, attention (batched) %.1f ms at %.1f GFLOP/s;"
                        + " sum %.1f ms per part (wall median %.1f)%n", byRank[0] / 1e6, byRank[1] / byRank[0],
                byRank[2] / 1e6, byRank[3] / byRank[2], sum / 1e6, tm.medianMs);
    }
}
