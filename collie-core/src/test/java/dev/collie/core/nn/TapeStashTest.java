package dev.collie.core.nn;

import dev.collie.core.tensor.ActivationDtype;
import dev.collie.core.tensor.Workspaces;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What {@link Tape#stash}, {@link Tape#keep} and {@link Tape#restore} store and give back. */
class TapeStashTest {
    /** A layer that saves {@code 2x} as {@code how} passes it, and returns {@code x + 1}. */
    private record Doubling(java.util.function.BiFunction<Tape, INDArray, INDArray> how) implements Layer {
        @Override
        public INDArray forward(Tape tape, INDArray x) {
            tape.save(this, how.apply(tape, x.mul(2)));
            return x.add(1);
        }

        @Override
        public INDArray backward(Tape tape, INDArray dy) {
            return tape.restore(tape.pop(this));
        }
    }

    @Test
    void fp32AndInferenceTapesStoreTheArrayItself() {
        INDArray x = Nd4j.rand(DataType.FLOAT, 64, 32);
        Tape fp32 = Tape.forTraining(2, 32);
        assertSame(x, fp32.stash(x));
        assertSame(x, fp32.restore(x));
        assertEquals(64 * 32 * 4, fp32.stashedBytes());
        assertSame(x, Tape.forInference(2, 32).stash(x));
    }

    @Test
    void bf16NarrowsLargeFloat32OnceAndKeepsTheRest() {
        Tape tape = Tape.forTraining(2, 32, ActivationDtype.BF16);
        INDArray x = Nd4j.rand(DataType.FLOAT, 64, 32);
        INDArray s = tape.stash(x);
        assertEquals(DataType.BFLOAT16, s.dataType());
        assertSame(s, tape.stash(x));                                   // the input of q, k and v: stored once
        assertEquals(64 * 32 * 2, tape.stashedBytes());
        INDArray back = tape.restore(s);
        assertEquals(DataType.FLOAT, back.dataType());
        assertTrue(back.sub(x).amaxNumber().doubleValue() <= Math.scalb(1.0, -8));
        INDArray small = Nd4j.rand(DataType.FLOAT, 8, 8);               // below MIN_NARROWED
        INDArray wide = Nd4j.rand(DataType.DOUBLE, 64, 32);
        assertSame(small, tape.stash(small));
        assertSame(wide, tape.stash(wide));
        assertSame(wide, tape.restore(wide));
    }

    @Test
    void aLayerRunsInScratchAndWhatItStashesOrKeepsOutlivesIt() {
        Tape tape = Tape.forTraining(2, 32, ActivationDtype.BF16);
        List<Layer> layers = List.of(new Doubling(Tape::stash), new Doubling(Tape::keep), new Doubling(Tape::stash));
        try (MemoryWorkspace ws = Workspaces.open("tape-stash-test")) {
            INDArray x = Nd4j.rand(DataType.FLOAT, 64, 32);
            INDArray y = LayerStack.forward(layers, tape, x);
            assertEquals(0.0, y.sub(x.add(3)).amaxNumber().doubleValue(), 1e-6);
            // each layer saved 2·(its input): read back after the later layers reused the scratch workspace
            INDArray kept = layers.get(1).backward(tape, null);
            assertEquals(0.0, kept.sub(x.add(1).mul(2)).amaxNumber().doubleValue(), 0.0);    // kept exactly
            INDArray first = layers.get(0).backward(tape, null);
            assertTrue(first.sub(x.mul(2)).amaxNumber().doubleValue() <= 2 * Math.scalb(1.0, -8));
        }
    }

    @Test
    void savingAnArrayOfTheLayersScratchWorkspaceIsRefused() {
        Tape tape = Tape.forTraining(2, 32, ActivationDtype.BF16);
        try (MemoryWorkspace ws = Workspaces.open("tape-stash-test")) {
            INDArray x = Nd4j.rand(DataType.FLOAT, 64, 32);
            var e = assertThrows(IllegalStateException.class,
                    () -> LayerStack.forward(List.of(new Doubling((t, a) -> a)), tape, x));
            assertTrue(e.getMessage().contains("pass it through Tape.stash or Tape.keep"), e.getMessage());
        }
    }
}
