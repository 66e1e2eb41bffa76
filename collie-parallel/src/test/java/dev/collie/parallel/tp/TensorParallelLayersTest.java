package dev.collie.parallel.tp;

import dev.collie.core.CollieException;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.nn.Attention;
import dev.collie.core.nn.Embedding;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.RotaryEmbedding;
import dev.collie.core.nn.SwiGluMlp;
import dev.collie.core.nn.Tape;
import dev.collie.parallel.testing.OneOpThread;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

import static dev.collie.parallel.tp.TpRanks.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;

/**
 * Every tensor-parallel layer on 2 local ranks against its unsplit counterpart, in float64: outputs equal,
 * input gradients equal (summed where a layer returns a partial one), weight-gradient shards equal the
 * matching slices of the unsplit layer's gradients.
 */
@Timeout(value = 15, unit = TimeUnit.SECONDS)
@ExtendWith(OneOpThread.class)
class TensorParallelLayersTest {
    private static final DataType F64 = DataType.DOUBLE;
    private static final double TOL = 1e-12;

    private static INDArray cols(INDArray a, int rank, int n) {
        long w = a.size(1) / n;
        return a.get(all(), interval(rank * w, (rank + 1) * w)).dup('c');
    }

    private static INDArray rows(INDArray a, int rank, int n) {
        long h = a.size(0) / n;
        return a.rank() == 1 ? a.get(interval(rank * h, (rank + 1) * h)).dup() : a.get(interval(rank * h, (rank + 1) * h), all()).dup('c');
    }

    private static void close(String what, INDArray want, INDArray got, double tol) {
        double d = maxAbsDiff(want, got);
        System.out.printf("%-40s max |diff| %.3g%n", what, d);
        assertTrue(d <= tol, what + " differs by " + d);
    }

    /** Gradients of every parameter of {@code m}, by name, copied. */
    private static Map<String, INDArray> grads(Module m) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        m.namedParameters().forEach((n, p) -> out.put(n, p.grad() == null ? null : p.grad().dup()));
        return out;
    }

    private static void randomBiases(Module m) {
        m.namedParameters().forEach((n, p) -> {
            if (n.endsWith("bias")) {
                p.data().assign(Nd4j.randn(F64, p.shape()));
            }
        });
    }

    /**
     * A full linear {@code in → out} (with random biases, if any) run forward and backward on a random input
     * {@code x [rows, in]} and output gradient {@code dy}, all drawn after seeding ND4J's generator with {@code seed}.
     */
    private record FullLinear(Linear full, INDArray x, INDArray dy, INDArray y, INDArray dx) {
        static FullLinear run(long seed, int in, int out, boolean bias, int rows) {
            Nd4j.getRandom().setSeed(seed);
            Linear full = new Linear(in, out, bias, F64, 0.5);
            randomBiases(full);
            INDArray x = Nd4j.randn(F64, rows, in);
            INDArray dy = Nd4j.randn(F64, rows, out);
            Tape tape = Tape.forTraining(1, rows);
            return new FullLinear(full, x, dy, full.forward(tape, x.dup()), full.backward(tape, dy.dup()));
        }
    }

    private static void copyWeights(Module from, Module to) {
        Map<String, Parameter> dst = to.namedParameters();
        from.namedParameters().forEach((n, p) -> dst.get(n).setData(p.data()));
    }

    @Test
    void columnParallelLinearGivesItsShareOfTheOutputAndThePartialInputGradient() throws Exception {
        FullLinear ref = FullLinear.run(1, 6, 8, true, 5);
        List<INDArray[]> r = TpRanks.run(2, c -> {
            ColumnParallelLinear l = new ColumnParallelLinear(ref.full(), c);
            Tape t = Tape.forTraining(1, 5);
            INDArray yl = l.forward(t, ref.x().dup());
            INDArray partial = l.backward(t, cols(ref.dy(), c.rank(), 2));
            // the same layer inside a region: the input gradient comes back whole
            TensorParallelRegion region = new TensorParallelRegion(l, c);
            l.zeroGrad();
            Tape t2 = Tape.forTraining(1, 5);
            region.forward(t2, ref.x().dup());
            INDArray whole = region.backward(t2, cols(ref.dy(), c.rank(), 2));
            return new INDArray[] {yl, partial, l.weight().grad().dup(), l.bias().grad().dup(), whole};
        });
        for (int k = 0; k < 2; k++) {
            close("column y rank " + k, cols(ref.y(), k, 2), r.get(k)[0], TOL);
            close("column dW rank " + k, rows(ref.full().weight().grad(), k, 2), r.get(k)[2], TOL);
            close("column db rank " + k, rows(ref.full().bias().grad(), k, 2), r.get(k)[3], TOL);
            close("region dx rank " + k, ref.dx(), r.get(k)[4], TOL);
        }
        close("column partial dx summed", ref.dx(), r.get(0)[1].add(r.get(1)[1]), TOL);
    }

    @Test
    void rowParallelLinearSumsTheOutputAndGivesItsShareOfTheInputGradient() throws Exception {
        FullLinear ref = FullLinear.run(2, 8, 6, true, 5);
        List<INDArray[]> r = TpRanks.run(2, c -> {
            RowParallelLinear l = new RowParallelLinear(ref.full(), c);
            Tape t = Tape.forTraining(1, 5);
            long sent = c.bytesSent();
            INDArray yl = l.forward(t, cols(ref.x(), c.rank(), 2));
            assertEquals(5 * 6 * 8, c.bytesSent() - sent, "one all-reduce of [rows, out] in forward");
            sent = c.bytesSent();
            INDArray dxl = l.backward(t, ref.dy().dup());
            assertEquals(0, c.bytesSent() - sent, "no communication in backward");
            return new INDArray[] {yl, dxl, l.weight().grad().dup(), l.bias().grad().dup()};
        });
        for (int k = 0; k < 2; k++) {
            close("row y rank " + k, ref.y(), r.get(k)[0], TOL);
            close("row dx rank " + k, cols(ref.dx(), k, 2), r.get(k)[1], TOL);
            close("row dW rank " + k, cols(ref.full().weight().grad(), k, 2), r.get(k)[2], TOL);
            close("row db rank " + k, ref.full().bias().grad(), r.get(k)[3], TOL);
        }
    }

    /** Runs {@code make}'s module whole and as a tensor-parallel region on 2 ranks; compares everything. */
    private static void compareRegion(String what, Supplier<Module> make, Map<String, ParallelStyle> plan,
                                      int b, int t, long hidden) throws Exception {
        Nd4j.getRandom().setSeed(3);
        Module full = make.get();
        randomBiases(full);
        List<Module> copies = new ArrayList<>();
        for (int k = 0; k < 2; k++) {
            Module m = make.get();
            copyWeights(full, m);
            copies.add(m);
        }
        INDArray x = Nd4j.randn(F64, (long) b * t, hidden);
        INDArray dy = Nd4j.randn(F64, (long) b * t, hidden);
        Tape tape = Tape.forTraining(b, t);
        INDArray y = ((Layer) full).forward(tape, x.dup());
        INDArray dx = ((Layer) full).backward(tape, dy.dup());
        Map<String, INDArray> fullGrads = grads(full);
        List<Object[]> r = TpRanks.run(2, c -> {
            Module m = copies.get(c.rank());
            plan.forEach((child, style) -> {
                Linear l = (Linear) m.children().get(child);
                m.replaceModule(child, style == ParallelStyle.COLUMN ? new ColumnParallelLinear(l, c) : new RowParallelLinear(l, c));
            });
            TensorParallelRegion region = new TensorParallelRegion((Layer) m, c);
            Tape tt = Tape.forTraining(b, t);
            long sent = c.bytesSent();
            INDArray yl = region.forward(tt, x.dup());
            long forwardBytes = c.bytesSent() - sent;
            sent = c.bytesSent();
            INDArray dxl = region.backward(tt, dy.dup());
            long backwardBytes = c.bytesSent() - sent;
            return new Object[] {yl, dxl, grads(region), forwardBytes, backwardBytes};
        });
        long oneAllReduce = (long) b * t * hidden * 8;     // 2 ranks: each sends 2(n-1)/n = 1 times the array
        for (int k = 0; k < 2; k++) {
            Object[] o = r.get(k);
            close(what + " y rank " + k, y, (INDArray) o[0], TOL);
            close(what + " dx rank " + k, dx, (INDArray) o[1], TOL);
            assertEquals(oneAllReduce, (long) o[3], what + ": bytes in forward");
            assertEquals(oneAllReduce, (long) o[4], what + ": bytes in backward");
            @SuppressWarnings("unchecked")
            Map<String, INDArray> g = (Map<String, INDArray>) o[2];
            assertEquals(fullGrads.keySet(), g.keySet(), "parameter names");
            for (Map.Entry<String, INDArray> e : fullGrads.entrySet()) {
                String name = e.getKey();
                String child = name.substring(0, name.indexOf('.'));
                ParallelStyle style = plan.getOrDefault(child, ParallelStyle.REPLICATE);
                INDArray want = e.getValue();
                if (style == ParallelStyle.COLUMN) {
                    want = rows(want, k, 2);
                } else if (style == ParallelStyle.ROW && name.endsWith("weight")) {
                    want = cols(want, k, 2);
                }
                close(what + " grad " + name + " rank " + k, want, g.get(name), TOL);
            }
        }
    }

    @Test
    void attentionOverHalfTheHeadsOnEachRankEqualsTheWholeAttention() throws Exception {
        RotaryEmbedding rope = new RotaryEmbedding(new double[] {1.0, 0.1});
        Map<String, ParallelStyle> plan = new LinkedHashMap<>();
        plan.put("q_proj", ParallelStyle.COLUMN);
        plan.put("k_proj", ParallelStyle.COLUMN);
        plan.put("v_proj", ParallelStyle.COLUMN);
        plan.put("o_proj", ParallelStyle.ROW);
        // 4 query heads sharing 2 KV heads, head dim 4: each rank runs 2 query heads over 1 KV head
        compareRegion("attention", () -> new Attention(16, 4, 2, 4, true, rope, F64, 0.3), plan, 2, 5, 16);
    }

    @Test
    void swiGluMlpOverHalfTheIntermediateEqualsTheWholeMlp() throws Exception {
        Map<String, ParallelStyle> plan = new LinkedHashMap<>();
        plan.put("gate_proj", ParallelStyle.COLUMN);
        plan.put("up_proj", ParallelStyle.COLUMN);
        plan.put("down_proj", ParallelStyle.ROW);
        compareRegion("mlp", () -> new SwiGluMlp(12, 24, true, F64, 0.3), plan, 2, 3, 12);
    }

    @Test
    void vocabParallelEmbeddingLooksUpEveryRowAndScattersOnlyItsOwn() throws Exception {
        Nd4j.getRandom().setSeed(4);
        Embedding full = new Embedding(10, 4, F64, 1.0);
        INDArray[] idsCases = {
            Nd4j.createFromArray(new long[][] {{0, 9, 4, 5, 5}, {3, 7, 9, 0, 2}}),
            Nd4j.createFromArray(new long[][] {{0, 1, 2, 3, 4}}),       // none on rank 1
        };
        for (INDArray ids : idsCases) {
            full.zeroGrad();
            INDArray dy = Nd4j.randn(F64, ids.length(), 4);
            Tape tape = Tape.forTraining((int) ids.size(0), (int) ids.size(1));
            INDArray y = full.forward(tape, ids);
            assertNull(full.backward(tape, dy.dup()));
            INDArray dW = full.weight().grad().dup();
            List<INDArray[]> r = TpRanks.run(2, c -> {
                VocabParallelEmbedding e = new VocabParallelEmbedding(full, c);
                Tape t = Tape.forTraining((int) ids.size(0), (int) ids.size(1));
                INDArray yl = e.forward(t, ids);
                long sent = c.bytesSent();
                assertNull(e.backward(t, dy.dup()));
                assertEquals(0, c.bytesSent() - sent, "no communication in the embedding's backward");
                return new INDArray[] {yl, e.weight().grad().dup()};
            });
            for (int k = 0; k < 2; k++) {
                close("embedding y rank " + k, y, r.get(k)[0], TOL);
                close("embedding dW rank " + k, rows(dW, k, 2), r.get(k)[1], TOL);
            }
        }
    }

    @Test
    void vocabParallelEmbeddingRejectsIdsOutsideTheWholeVocabularyAsEmbeddingDoes() throws Exception {
        Embedding full = new Embedding(10, 4, F64, 1.0);
        for (long bad : new long[] {10, -1}) {
            INDArray ids = Nd4j.createFromArray(new long[][] {{1, bad, 2}});
            String want = assertThrows(CollieException.class, () -> full.forward(Tape.forTraining(1, 3), ids)).getMessage();
            List<String> got = TpRanks.run(2, c -> {
                VocabParallelEmbedding e = new VocabParallelEmbedding(full, c);
                return assertThrows(CollieException.class, () -> e.forward(Tape.forTraining(1, 3), ids)).getMessage();
            });
            assertEquals(List.of(want, want), got);
        }
        // an id of rank 1's rows is fine on rank 0 (and the other way round)
        TpRanks.run(2, c -> new VocabParallelEmbedding(full, c).forward(Tape.forInference(1, 2),
                Nd4j.createFromArray(new long[][] {{0, 9}})));
    }

    @Test
    void untiedVocabParallelHeadGivesLocalLogitsAndTheWholeInputGradient() throws Exception {
        FullLinear ref = FullLinear.run(5, 4, 10, false, 6);
        List<INDArray[]> r = TpRanks.run(2, c -> {
            VocabParallelHead h = new VocabParallelHead(ref.full(), c);
            assertEquals(10, h.vocabSize());
            assertEquals(5L * c.rank(), h.vocabStart());
            Tape t = Tape.forTraining(1, 6);
            INDArray yl = h.forward(t, ref.x().dup());
            INDArray dxl = h.backward(t, cols(ref.dy(), c.rank(), 2));
            return new INDArray[] {yl, dxl, h.weight().grad().dup()};
        });
        for (int k = 0; k < 2; k++) {
            close("head logits rank " + k, cols(ref.y(), k, 2), r.get(k)[0], TOL);
            close("head dx rank " + k, ref.dx(), r.get(k)[1], TOL);
            close("head dW rank " + k, rows(ref.full().weight().grad(), k, 2), r.get(k)[2], TOL);
        }
    }

    @Test
    void tiedHeadSharesTheEmbeddingShardAndItsHookFiresOnceAfterBothUses() throws Exception {
        Nd4j.getRandom().setSeed(6);
        Embedding full = new Embedding(10, 4, F64, 1.0);
        INDArray ids = Nd4j.createFromArray(new long[][] {{1, 8, 3}, {6, 6, 0}});
        INDArray h = Nd4j.randn(F64, 6, 4);
        INDArray dEmb = Nd4j.randn(F64, 6, 4);
        INDArray dLogits = Nd4j.randn(F64, 6, 10);
        Tape tape = Tape.forTraining(2, 3);
        INDArray y = full.forward(tape, ids);
        INDArray logits = full.outputHead().forward(tape, h.dup());
        INDArray dh = full.outputHead().backward(tape, dLogits.dup());
        full.backward(tape, dEmb.dup());
        INDArray dW = full.weight().grad().dup();
        List<INDArray[]> r = TpRanks.run(2, c -> {
            VocabParallelEmbedding e = new VocabParallelEmbedding(full, c);
            Layer head = e.outputHead();
            assertSame(head, e.outputHead());
            assertSame(e.weight(), ((VocabParallelHead) head).weight());
            AtomicInteger fired = new AtomicInteger();
            INDArray[] atHook = new INDArray[1];
            e.weight().setHook((p, g) -> {
                fired.incrementAndGet();
                atHook[0] = g.dup();
                return true;
            });
            Tape t = Tape.forTraining(2, 3);
            INDArray yl = e.forward(t, ids);
            INDArray ll = head.forward(t, h.dup());
            INDArray dhl = head.backward(t, cols(dLogits, c.rank(), 2));
            assertEquals(0, fired.get(), "hook fired before the embedding's contribution");
            e.backward(t, dEmb.dup());
            assertEquals(1, fired.get());
            return new INDArray[] {yl, ll, dhl, atHook[0]};
        });
        for (int k = 0; k < 2; k++) {
            close("tied embedding y rank " + k, y, r.get(k)[0], TOL);
            close("tied logits rank " + k, cols(logits, k, 2), r.get(k)[1], TOL);
            close("tied head dx rank " + k, dh, r.get(k)[2], TOL);
            close("tied dW (both uses) rank " + k, rows(dW, k, 2), r.get(k)[3], TOL);
        }
    }

    @Test
    void shardOfSlicesTheSplitDimension() {
        INDArray w = Nd4j.arange(24).reshape(4, 6).castTo(F64);
        assertEquals(w.get(interval(2, 4), all()), TensorParallel.shardOf(w, ParallelStyle.COLUMN, 1, 2));
        assertEquals(w.get(interval(0, 2), all()), TensorParallel.shardOf(w, ParallelStyle.VOCAB, 0, 2));
        assertEquals(w.get(all(), interval(2, 4)), TensorParallel.shardOf(w, ParallelStyle.ROW, 1, 3));
        assertEquals(w, TensorParallel.shardOf(w, ParallelStyle.REPLICATE, 1, 3));
        assertEquals(Nd4j.createFromArray(2.0, 3.0), TensorParallel.shardOf(Nd4j.createFromArray(0.0, 1.0, 2.0, 3.0),
                ParallelStyle.COLUMN, 1, 2));
        assertThrows(IllegalArgumentException.class, () -> TensorParallel.shardOf(w, ParallelStyle.ROW, 0, 4));
        assertThrows(IllegalArgumentException.class,
                () -> TensorParallel.shardOf(Nd4j.createFromArray(0.0, 1.0), ParallelStyle.ROW, 0, 2));
    }

    @Test
    void planPatternsMatchDottedNamesComponentWise() {
        Map<String, ParallelStyle> plan = new LinkedHashMap<>();
        plan.put("model.layers.*.self_attn.(q_proj|k_proj|v_proj)", ParallelStyle.COLUMN);
        plan.put("model.layers.*.mlp.down_proj", ParallelStyle.ROW);
        plan.put("model.norm", ParallelStyle.REPLICATE);
        plan.put("lm_head", ParallelStyle.VOCAB);
        List<String> names = List.of("model", "model.layers.0.self_attn.q_proj", "model.layers.12.self_attn.v_proj",
                "model.layers.0.self_attn.o_proj", "model.layers.1.2.self_attn.k_proj", "model.layers.0.self_attn.q_proj.lora_A",
                "model.layers.3.mlp.down_proj", "model.norm", "lm_head", "xlm_head", "model.layersX0.mlp.down_proj");
        Map<String, ParallelStyle> m = TensorParallel.match(plan, names);
        Map<String, ParallelStyle> want = new LinkedHashMap<>();
        want.put("model.layers.0.self_attn.q_proj", ParallelStyle.COLUMN);
        want.put("model.layers.12.self_attn.v_proj", ParallelStyle.COLUMN);
        want.put("model.layers.3.mlp.down_proj", ParallelStyle.ROW);
        want.put("lm_head", ParallelStyle.VOCAB);
        assertEquals(want, m);
    }
}
