package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Checkpointed;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Tape;
import dev.collie.core.optim.Sgd;
import dev.collie.core.testing.ToyLanguageModel;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Activation checkpointing put into a model's tree from outside: same names, same steps, off again. */
class ActivationCheckpointingTest {
    private static ToyLanguageModel model() {
        return new ToyLanguageModel(16, 6, DataType.DOUBLE, 3);
    }

    @Test
    void wrapsThePlannedModulesUnderTheirNamesAndTrainsTheSame() {
        ToyLanguageModel plain = model();
        ToyLanguageModel recomputed = model();
        Module head = recomputed.children().get("head");
        List<String> names = List.copyOf(recomputed.namedParameters().keySet());
        assertEquals(1, ActivationCheckpointing.apply(recomputed, true));
        assertEquals(1, ActivationCheckpointing.apply(recomputed, true));      // once is enough: no double wrap
        Checkpointed c = assertInstanceOf(Checkpointed.class, recomputed.children().get("head"));
        assertSame(head, c.inner());
        assertEquals(names, List.copyOf(recomputed.namedParameters().keySet()));
        CollieConfig config = CollieConfig.builder().trainMicroBatchSize(2).shuffle(false).lr(0.5).build();
        var rows = ToyLanguageModel.rows(6, 0, 16, 2);
        for (ToyLanguageModel m : List.of(plain, recomputed)) {
            Trainer.builder().model(m).optimizer(new Sgd(m.namedParameters())).config(config).trainData(rows)
                    .build().train();
        }
        for (String n : names) {
            INDArray d = plain.namedParameters().get(n).data().sub(recomputed.namedParameters().get(n).data());
            assertEquals(0.0, d.amaxNumber().doubleValue(), 1e-12, n);
        }
        ActivationCheckpointing.apply(recomputed, false);
        assertSame(head, recomputed.children().get("head"));
        int[] row = rows.get(0).inputIds();
        INDArray ids = Nd4j.createFromArray(row).castTo(DataType.INT64).reshape(1, row.length);
        assertEquals(row.length * 16L, recomputed.forward(Tape.forInference(1, row.length), ids).length());
    }

    @Test
    void aModelWithoutARecomputePlanIsRefused() {
        LanguageModel none = new LanguageModel() {
            final ToyLanguageModel toy = model();

            @Override public Module module() { return toy; }
            @Override public INDArray forward(Tape tape, INDArray ids) { return toy.forward(tape, ids); }
            @Override public void backward(Tape tape, INDArray d) { toy.backward(tape, d); }
            @Override public long vocabSize() { return 16; }
        };
        CollieException e = assertThrows(CollieException.class, () -> ActivationCheckpointing.apply(none, true));
        assertTrue(e.getMessage().endsWith("names no module to recompute (LanguageModel.recomputePlan()), so activation"
                + " checkpointing cannot apply"), e.getMessage());
        assertEquals(0, ActivationCheckpointing.apply(none, false));
    }
}
