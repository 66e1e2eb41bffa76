package dev.collie.examples.cli;

import dev.collie.core.io.HfCheckpoint;
import dev.collie.core.io.HfWeights;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code collie train --optimizer X --no-shuffle} from the tiny Hugging Face directory saves the weights
 * of the independent PyTorch implementation (fixtures/optimizers, tools/reference/make_optimizer_fixtures.py):
 * three steps of two rows, file order, the fixture's hyper-parameters given as flags. Bounds are those of
 * OptimizerParityTest (there relative to a tensor's largest weight, ~1 here; see its comment for why Adan's is 2e-5). SophiaG is
 * covered there only: the CLI samples its Hessian labels, the fixture stores them.
 */
@NumericalParity
class CliOptimizerParityTest {
    private static final Path FIXTURES = CliTest.TINY.getParent().resolve("optimizers");

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = ';', value = {
        "lion; 1e-6; --optimizer lion --lr 1e-3 --betas 0.9,0.99 --weight-decay 0.1",
        "adan; 2e-5; --optimizer adan --lr 1e-3 --betas 0.98,0.92,0.99 --eps 1e-8 --weight-decay 0.02 --max-grad-norm 0.5",
        "lomo; 1e-6; --optimizer lomo --lr 1.0 --clip-grad-norm 0.5 --clip-grad-value 0.01 --weight-decay 0.1",
        "adalomo; 1e-6; --optimizer adalomo --lr 1e-2 --eps 1e-30,1e-3 --weight-decay 0.1",
    })
    void trainFromAnHfDirectoryMatchesTheTorchReference(String fixture, double tolerance, String flags,
                                                       @TempDir Path tmp) {
        List<String> args = new ArrayList<>(List.of("train", "--model", CliTest.TINY.toString(),
                "--data", CliTest.TINY.resolve("adamw_rows.jsonl").toString(), "--micro-batch", "2", "--steps", "3",
                "--no-shuffle", "--save", tmp.resolve("out").toString()));
        args.addAll(Arrays.asList(flags.split(" ")));
        CliTest.Result r = CliTest.run(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        Map<String, INDArray> got = new HashMap<>();
        Map<String, INDArray> want = new HashMap<>();
        try (HfWeights saved = HfCheckpoint.open(tmp.resolve("out"));
             SafeTensors ref = SafeTensors.open(FIXTURES.resolve(fixture + ".safetensors"))) {
            for (String name : saved.names()) {
                got.put(name, saved.load(name, DataType.DOUBLE));
                want.put(name, ref.load("final." + name, DataType.DOUBLE));
            }
        }
        // the largest weight is ~1 (the norms'): the bound is absolute; Lion and Adan leave out near-zero-momentum
        // elements (counted, at most 1e-3 of them), as OptimizerParityTest does
        String what = fixture + ": saved weights vs torch's after 3 steps";
        if (fixture.equals("lion") || fixture.equals("adan")) {
            Agreement.withinLeavingOut(what, got, want, tolerance, 1e-3);
        } else {
            Agreement.within(what, Agreement.maxAbsDiff(got, want), tolerance);
        }
    }
}
