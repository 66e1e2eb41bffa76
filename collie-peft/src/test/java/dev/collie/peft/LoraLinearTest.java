package dev.collie.peft;

import dev.collie.core.nn.GradCheck;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LoraLinearTest {
    private static final DataType D = DataType.DOUBLE;

    @BeforeAll
    static void seed() {
        Nd4j.getRandom().setSeed(3);
    }

    private static LoraLinear lora(boolean bias, double dropout, long seed, DataType dt) {
        Linear base = new Linear(6, 5, bias, dt, 0.5);
        base.weight().setTrainable(false);
        if (bias) {
            base.bias().setTrainable(false);
        }
        LoraLinear l = new LoraLinear(base, 3, 2.0, dropout, seed);
        l.loraB().data().assign(Nd4j.randn(dt, 5, 3).muli(0.5));   // as if trained: B = 0 hides mistakes
        return l;
    }

    @Test
    void backwardMatchesFiniteDifferencesWithTheBaseFrozen() {
        LoraLinear l = lora(true, 0, 0, D);
        GradCheck.check(l, l.namedParameters(), Nd4j.randn(D, 4, 6), t -> t ? Tape.forTraining(1, 4)
                : Tape.forInference(1, 4), 31);
        assertNull(l.base().weight().grad(), "the frozen base weight got a gradient");
        assertEquals(0, l.base().weight().gradientBufferBytes());
        assertTrue(l.loraA().grad() != null && l.loraB().grad() != null);
    }

    @Test
    void forwardIsBaseOutputPlusScaledLowRankUpdate() {
        LoraLinear l = lora(false, 0, 0, D);
        INDArray x = Nd4j.randn(D, 3, 6);
        INDArray expect = x.mmul(l.base().weight().data().transpose())
                .add(x.mmul(l.loraA().data().transpose()).mmul(l.loraB().data().transpose()).muli(2.0));
        assertTrue(expect.equalsWithEps(l.forward(Tape.forInference(1, 3), x), 1e-12));
    }

    @Test
    void keepsTheBaseNamesAndAddsPeftsAdapterNames() {
        LoraLinear l = lora(true, 0, 0, D);
        assertEquals(List.of("weight", "bias", "lora_A.weight", "lora_B.weight"), List.copyOf(l.namedParameters().keySet()));
        assertEquals(List.of(3L, 6L), List.of(l.loraA().shape()[0], l.loraA().shape()[1]));
        assertEquals(List.of(5L, 3L), List.of(l.loraB().shape()[0], l.loraB().shape()[1]));
    }

    @Test
    void freshAdapterStartsAsANoOpWithKaimingUniformA() {
        Linear base = new Linear(64, 8, false, D, 0.5);
        LoraLinear l = new LoraLinear(base, 16, 1.0, 0, 0);
        assertEquals(0.0, l.loraB().data().amaxNumber().doubleValue());
        double bound = 1 / Math.sqrt(64);
        assertTrue(l.loraA().data().amaxNumber().doubleValue() <= bound);
        assertTrue(l.loraA().data().amaxNumber().doubleValue() > 0.8 * bound);
    }

    @Test
    void mergeThenUnmergeReturnsTheBaseWeightsWithinRounding() {
        LoraLinear l = lora(false, 0, 0, DataType.FLOAT);
        INDArray before = l.base().weight().data().dup();
        INDArray x = Nd4j.randn(DataType.FLOAT, 3, 6);
        INDArray unmerged = l.forward(Tape.forInference(1, 3), x);
        l.merge();
        assertTrue(l.isMerged());
        INDArray merged = l.forward(Tape.forInference(1, 3), x);
        assertTrue(unmerged.equalsWithEps(merged, 1e-5), "merged forward differs");
        l.unmerge();
        assertFalse(l.isMerged());
        double diff = before.sub(l.base().weight().data()).amaxNumber().doubleValue();
        assertTrue(diff < 1e-6, "base weights after merge + unmerge differ by " + diff);
    }

    @Test
    void dropoutActsOnlyInTrainingAndIsSeeded() {
        LoraLinear a = lora(false, 0.5, 42, D);
        LoraLinear b = new LoraLinear(a.base(), 3, 2.0, 0.5, 42);
        LoraLinear c = new LoraLinear(a.base(), 3, 2.0, 0.5, 43);
        LoraLinear none = new LoraLinear(a.base(), 3, 2.0, 0.0, 42);
        for (LoraLinear l : List.of(b, c, none)) {
            l.loraA().data().assign(a.loraA().data());
            l.loraB().data().assign(a.loraB().data());
        }
        INDArray x = Nd4j.randn(D, 8, 6);
        INDArray plain = none.forward(Tape.forInference(1, 8), x);
        assertTrue(plain.equalsWithEps(a.forward(Tape.forInference(1, 8), x), 1e-12), "dropout at inference");
        INDArray ta = a.forward(Tape.forTraining(1, 8), x);
        assertFalse(plain.equalsWithEps(ta, 1e-6), "no dropout in training");
        assertTrue(ta.equalsWithEps(b.forward(Tape.forTraining(1, 8), x), 1e-12), "same seed, other mask");
        assertFalse(ta.equalsWithEps(c.forward(Tape.forTraining(1, 8), x), 1e-6), "other seed, same mask");
    }

    @Test
    void dropoutBackwardUsesTheForwardsMask() {
        LoraLinear l = lora(false, 0.3, 5, D);
        INDArray x = Nd4j.randn(D, 4, 6);
        Tape t = Tape.forTraining(1, 4);
        INDArray y = l.forward(t, x);
        INDArray dy = Nd4j.randn(D, 4, 5);
        INDArray dx = l.backward(t, dy);
        // the mask the forward kept in the tape's cache must be the one both directions used
        INDArray m = t.cached(List.of(l, "lora-dropout"), () -> null);
        INDArray expect = dy.mmul(l.base().weight().data())
                .add(dy.mmul(l.loraB().data()).mmul(l.loraA().data()).muli(2.0).muli(m));
        assertTrue(expect.equalsWithEps(dx, 1e-12));
        INDArray yExpect = x.mmul(l.base().weight().data().transpose())
                .add(x.mul(m).mmul(l.loraA().data().transpose()).mmul(l.loraB().data().transpose()).muli(2.0));
        assertTrue(yExpect.equalsWithEps(y, 1e-12));
        long zeros = m.eq(0.0).castTo(DataType.INT64).sumNumber().longValue();
        assertTrue(zeros > 0 && zeros < m.length());
    }

    @Test
    void adapterParametersAreOrdinaryParametersForAnyOptimizer() {
        LoraLinear l = lora(false, 0, 0, D);
        Map<String, Parameter> trainable = Peft.trainableNamedParameters(l);
        assertEquals(List.of("lora_A.weight", "lora_B.weight"), List.copyOf(trainable.keySet()));
    }
}
