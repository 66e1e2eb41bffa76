package dev.collie.parallel.peft;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Tape;
import dev.collie.core.nn.TensorParallelContext;
import dev.collie.parallel.tp.TensorParallel;
import dev.collie.peft.LoraLinear;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One LoRA layer split over 2 tensor-parallel ranks ({@link LoraLinear#shardForTensorParallel}) against the same
 * layer whole, in float64: outputs, input gradients (summed over the ranks for a column-parallel base, as its
 * region does) and adapter gradients agree to 1e-12, for both reductions of {@code A}'s gradient (rows fewer or
 * more than the input features), with and without dropout; and the bytes the adapter adds are the documented ones.
 */
class LoraTensorParallelTest {
    private static final DataType D = DataType.DOUBLE;
    private static final int IN = 8;
    private static final int OUT = 6;
    private static final int R = 3;
    private static final double TOL = 1e-12;

    private static INDArray det(long seed, long... shape) {
        Random rnd = new Random(seed);
        double[] v = new double[(int) Arrays.stream(shape).reduce(1, (a, b) -> a * b)];
        for (int i = 0; i < v.length; i++) {
            v[i] = rnd.nextGaussian() * 0.5;
        }
        return Nd4j.create(v, shape, 'c');
    }

    /** The same whole layer on every call: frozen base with bias, A and B as if trained. */
    private static LoraLinear whole(double dropout) {
        Linear base = new Linear(IN, OUT, true, D, 0);
        base.weight().data().assign(det(1, OUT, IN));
        base.bias().data().assign(det(2, OUT));
        base.weight().setTrainable(false);
        base.bias().setTrainable(false);
        LoraLinear l = new LoraLinear(base, R, 2.0, dropout, 17);
        l.loraA().data().assign(det(3, R, IN));
        l.loraB().data().assign(det(4, OUT, R));
        return l;
    }

    /** y, dx, dA, dB of one training forward/backward. */
    private static INDArray[] run(LoraLinear l, INDArray x, INDArray dy) {
        Tape tape = Tape.forTraining(1, (int) x.size(0));
        INDArray y = l.forward(tape, x).dup();
        INDArray dx = l.backward(tape, dy).dup();
        return new INDArray[] {y, dx, l.loraA().grad().dup(), l.loraB().grad().dup()};
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (ParallelStyle s : new ParallelStyle[] {ParallelStyle.COLUMN, ParallelStyle.ROW}) {
            for (int rows : new int[] {4, 12}) {          // fewer / more rows than IN: both reductions of dA
                for (double p : new double[] {0, 0.3}) {
                    out.add(Arguments.of(s, rows, p));
                }
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} base, {1} rows, dropout {2}")
    @MethodSource("cases")
    void splitLayerEqualsTheWholeLayer(ParallelStyle style, int rows, double dropout) throws Exception {
        INDArray x = det(5, rows, IN);
        INDArray dy = det(6, rows, OUT);
        INDArray[] expect = run(whole(dropout), x, dy);
        boolean column = style == ParallelStyle.COLUMN;
        List<INDArray[]> got = Ranks.run(2, c -> {
            TensorParallelContext ctx = TensorParallel.context(c);
            LoraLinear shard = (LoraLinear) whole(dropout).shardForTensorParallel(style, ctx);
            assertTrue(shard.isSplit());
            assertEquals(style, shard.splitStyle());
            assertFalse(shard.baseWeight().requiresGrad(), "the split base stays frozen");
            // split adapter tensors carry the split tag (whole-tensor optimizer statistics sum over the group)
            assertEquals(column ? -1 : 1, shard.loraA().shardDim(), "lora_A's split dimension");
            assertEquals(column ? 0 : -1, shard.loraB().shardDim(), "lora_B's split dimension");
            assertEquals(column ? ParallelStyle.REPLICATE : ParallelStyle.ROW, TensorParallel.styleOf(shard.loraA()));
            assertEquals(column ? ParallelStyle.COLUMN : ParallelStyle.REPLICATE, TensorParallel.styleOf(shard.loraB()));
            INDArray xi = column ? x : ctx.shardOf(x, ParallelStyle.ROW);
            INDArray dyi = column ? ctx.shardOf(dy, ParallelStyle.ROW) : dy;
            long before = c.bytesSent();
            INDArray[] r = run(shard, xi, dyi);
            long sent = c.bytesSent() - before;
            if (column) {
                r[1] = ctx.allReduceSum(r[1]);    // the region's sum of partial input gradients
            }
            assertNull(shard.baseWeight().grad(), "a frozen base weight got a gradient");
            return new INDArray[] {r[0], r[1], r[2], r[3], Nd4j.scalar((double) sent)};
        });
        // column base: y by columns, dx summed, A whole, B by rows; row base: y whole, dx by columns, A by columns
        INDArray y = column ? Nd4j.concat(1, got.get(0)[0], got.get(1)[0]) : got.get(0)[0];
        INDArray dx = column ? got.get(0)[1] : Nd4j.concat(1, got.get(0)[1], got.get(1)[1]);
        INDArray dA = column ? got.get(0)[2] : Nd4j.concat(1, got.get(0)[2], got.get(1)[2]);
        INDArray dB = column ? Nd4j.concat(0, got.get(0)[3], got.get(1)[3]) : got.get(0)[3];
        assertClose(expect[0], y, "output");
        assertClose(expect[1], dx, "input gradient");
        assertClose(expect[2], dA, "lora_A gradient");
        assertClose(expect[3], dB, "lora_B gradient");
        // replicated gradients are bit-identical on both ranks
        INDArray same = column ? got.get(0)[2].sub(got.get(1)[2]) : got.get(0)[3].sub(got.get(1)[3]);
        assertEquals(0.0, same.amaxNumber().doubleValue(), "replicated adapter gradient differs between ranks");
        // bytes per rank (ring all-reduce over 2 ranks sends the payload once): the adapter adds r·min(rows, in)
        // elements in backward (column base) or rows·r in forward (row base, besides the base's rows·out)
        long expectBytes = 8L * (column ? (long) R * Math.min(rows, IN) : (long) rows * R + (long) rows * OUT);
        for (INDArray[] g : got) {
            assertEquals(expectBytes, (long) g[4].getDouble(0), "bytes sent by one rank");
        }
    }

    private static void assertClose(INDArray expect, INDArray got, String what) {
        assertArrayEquals(expect.shape(), got.shape(), what + " shape");
        double d = expect.sub(got).amaxNumber().doubleValue();
        assertTrue(d <= TOL, what + " differs by " + d);
    }

    @Test
    void mergedShardGivesTheUnmergedOutputAndLoadsFullTensors() throws Exception {
        INDArray x = det(7, 5, IN);
        INDArray fullA = det(8, R, IN);
        INDArray fullB = det(9, OUT, R);
        for (ParallelStyle style : new ParallelStyle[] {ParallelStyle.COLUMN, ParallelStyle.ROW}) {
            boolean column = style == ParallelStyle.COLUMN;
            Ranks.run(2, c -> {
                TensorParallelContext ctx = TensorParallel.context(c);
                LoraLinear shard = (LoraLinear) whole(0).shardForTensorParallel(style, ctx);
                shard.loadFull(fullA, fullB);
                assertEquals(0.0, shard.loraA().data().sub(column ? fullA : ctx.shardOf(fullA, ParallelStyle.ROW))
                        .amaxNumber().doubleValue());
                assertEquals(0.0, shard.loraB().data().sub(column ? ctx.shardOf(fullB, ParallelStyle.COLUMN) : fullB)
                        .amaxNumber().doubleValue());
                INDArray xi = column ? x : ctx.shardOf(x, ParallelStyle.ROW);
                INDArray before = shard.forward(Tape.forInference(1, 5), xi).dup();
                shard.merge();
                INDArray merged = shard.forward(Tape.forInference(1, 5), xi).dup();
                shard.unmerge();
                assertTrue(before.sub(merged).amaxNumber().doubleValue() < 1e-12, style + ": merged shard differs");
                CollieException again = assertThrows(CollieException.class,
                        () -> shard.shardForTensorParallel(style, ctx));
                assertTrue(again.getMessage().contains("already split"), again.getMessage());
                assertThrows(IllegalStateException.class, shard::base);
                return null;
            });
        }
    }

    @Test
    void refusesVocabularySplits() throws Exception {
        Ranks.run(2, (Communicator c) -> {
            CollieException e = assertThrows(CollieException.class,
                    () -> whole(0).shardForTensorParallel(ParallelStyle.VOCAB, TensorParallel.context(c)));
            assertTrue(e.getMessage().contains("COLUMN or ROW"), e.getMessage());
            return null;
        });
    }
}
