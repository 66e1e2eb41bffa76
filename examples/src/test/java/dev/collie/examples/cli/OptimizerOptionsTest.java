package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.optim.PerParameterOptimizer;
import dev.collie.core.optim.Sgd;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import dev.collie.examples.SgdMomentum;
import dev.collie.optim.AdaLomo;
import dev.collie.optim.AdamW;
import dev.collie.optim.Adan;
import dev.collie.optim.Lion;
import dev.collie.optim.Lomo;
import dev.collie.optim.SophiaG;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptimizerOptionsTest {
    /** A command shaped like {@code train}: the mixin plus its own --clip-grad-norm. */
    @Command(name = "t")
    static final class TrainLike {
        @Mixin OptimizerOptions opt;
        @Option(names = "--clip-grad-norm") Double clipGradNorm;
    }

    /** An optimizer class without the (Map) constructor. */
    public static final class NoMapConstructor extends PerParameterOptimizer {
        public NoMapConstructor(Map<String, Parameter> params, double unused) {
            super(params);
        }

        @Override
        protected String[] stateNames() {
            return new String[0];
        }

        @Override
        protected void update(INDArray param, INDArray grad, INDArray[] state, double lr, long step) {
        }
    }

    private static final Map<String, Parameter> PARAMS = Map.of("w", new Parameter(Nd4j.zeros(DataType.FLOAT, 2, 3)));

    private static OptimizerOptions parse(String... args) {
        TrainLike cmd = new TrainLike();
        new CommandLine(cmd).parseArgs(args);
        return cmd.opt;
    }

    private static String error(String... args) {
        return assertThrows(CollieException.class, () -> parse(args).create(PARAMS)).getMessage();
    }

    @Test
    void learningRateDefaultsFollowTheChosenOptimizerUnlessGiven() {
        assertEquals(1e-3, parse().lr);
        assertEquals(1e-4, parse("--optimizer", "lion").lr);
        assertEquals(1e-4, parse("--optimizer", "sophia").lr);
        assertEquals(1e-3, parse("--optimizer", "adalomo").lr);
        assertEquals(0.05, parse("--lr", "0.05", "--optimizer", "lion").lr);
        assertEquals(0.05, parse("--optimizer", "lion", "--lr", "0.05").lr);
        assertTrue(parse("--lr", "0.05").lrGiven());
        assertFalse(parse("--optimizer", "lion").lrGiven());
    }

    @Test
    void eachNameBuildsItsOptimizer() {
        assertInstanceOf(AdamW.class, parse().create(PARAMS));
        assertInstanceOf(Lion.class, parse("--optimizer", "lion", "--betas", "0.95,0.98").create(PARAMS));
        assertInstanceOf(Adan.class, parse("--optimizer", "adan", "--betas", "0.98,0.92,0.99", "--max-grad-norm", "1",
                "--no-prox").create(PARAMS));
        SophiaG s = (SophiaG) parse("--optimizer", "sophia", "--rho", "0.05", "--hessian-interval", "5").create(PARAMS);
        assertEquals(5, s.hessianInterval());
        assertInstanceOf(Lomo.class, parse("--optimizer", "LOMO", "--clip-grad-value", "1").create(PARAMS));
        assertInstanceOf(AdaLomo.class, parse("--optimizer", "adalomo", "--eps", "1e-30,1e-3").create(PARAMS));
        assertInstanceOf(Sgd.class, parse("--optimizer", "sgd").create(PARAMS));
    }

    @Test
    void aWrongNumberOfBetasOrEpsIsAnErrorNamingTheOptimizer() {
        assertEquals("--betas: Adan takes 3 values, got 2", error("--optimizer", "adan", "--betas", "0.9,0.99"));
        assertEquals("--betas: Lion takes 2 values, got 3", error("--optimizer", "lion", "--betas", "0.9,0.99,0.9"));
        assertEquals("--eps: AdaLomo takes 2 values, got 1", error("--optimizer", "adalomo", "--eps", "1e-30"));
        assertEquals("--eps: AdamW takes one value, got 2", error("--eps", "1e-8,1e-8"));
    }

    @Test
    void aFlagTheOptimizerDoesNotTakeIsRefused() {
        assertEquals("--rho does not apply to AdamW (it takes --betas, --eps, --weight-decay)", error("--rho", "0.1"));
        assertEquals("--betas does not apply to LOMO (it takes --weight-decay, --clip-grad-value)",
                error("--optimizer", "lomo", "--betas", "0.9,0.9"));
        assertEquals("--weight-decay does not apply to SGD (it takes no optimizer options but --lr)",
                error("--optimizer", "sgd", "--weight-decay", "0.1"));
        assertTrue(error("--optimizer", "nosuch").startsWith("--optimizer: unknown optimizer 'nosuch' (available:"
                + " adamw, lion, adan, sophia, lomo, adalomo, sgd"));
    }

    @Test
    void clipGradNormGoesToLomoAndAdaLomoAndStaysWithTheTrainerOtherwise() {
        OptimizerOptions lomo = parse("--optimizer", "lomo", "--clip-grad-norm", "0.5");
        assertTrue(lomo.consumesClipGradNorm());
        Lomo l = (Lomo) lomo.create(PARAMS);
        assertEquals(0.5, l.clipGradNorm());
        assertEquals(2, l.passes());
        AdaLomo a = (AdaLomo) parse("--optimizer", "adalomo", "--clip-grad-norm", "2").create(PARAMS);
        assertEquals(2.0, a.clipGradNorm());
        assertEquals(1, ((Lomo) parse("--optimizer", "lomo").create(PARAMS)).passes());
        assertFalse(parse("--optimizer", "adamw", "--clip-grad-norm", "0.5").consumesClipGradNorm());
    }

    @Test
    void aClassNameIsLoadedByReflectionWithItsMapConstructor() {
        Optimizer o = parse("--optimizer", "dev.collie.examples.SgdMomentum").create(PARAMS);
        assertInstanceOf(SgdMomentum.class, o);
        assertEquals(PARAMS.keySet(), o.parameters().keySet());
    }

    @Test
    void aMissingClassOrConstructorIsAClearError() {
        assertEquals("--optimizer: class dev.collie.examples.NoSuch not found on the class path (built-in optimizers:"
                + " adamw, lion, adan, sophia, lomo, adalomo, sgd)", error("--optimizer", "dev.collie.examples.NoSuch"));
        assertEquals("--optimizer: class java.lang.String does not implement dev.collie.core.optim.Optimizer",
                error("--optimizer", "java.lang.String"));
        String name = NoMapConstructor.class.getName();
        assertEquals("--optimizer: class " + name + " has no public constructor NoMapConstructor(Map<String,"
                + " Parameter> params)", error("--optimizer", name));
        assertEquals("--betas does not apply to a custom optimizer class (configure it in its constructor) (it takes"
                + " no optimizer options but --lr)", error("--optimizer", "dev.collie.examples.SgdMomentum", "--betas",
                "0.9,0.9"));
    }

    @Test
    @NumericalParity
    void trainWithLionMatchesTheTorchReference(@TempDir Path tmp) {
        Path save = tmp.resolve("out");
        CliTest.Result r = CliTest.run("train", "--model", CliTest.TINY.toString(), "--data",
                CliTest.TINY.resolve("adamw_rows.jsonl").toString(), "--micro-batch", "2", "--no-shuffle", "--steps", "3",
                "--optimizer", "lion", "--lr", "1e-3", "--weight-decay", "0.1", "--save", save.toString());
        assertEquals(0, r.code(), r.err());
        Path ref = CliTest.TINY.resolveSibling("optimizers").resolve("lion.safetensors");
        Map<String, INDArray> have = new HashMap<>();
        Map<String, INDArray> expect = new HashMap<>();
        try (SafeTensors want = SafeTensors.open(ref); SafeTensors got = SafeTensors.open(save.resolve("model.safetensors"))) {
            for (String n : got.names()) {
                have.put(n, got.load(n));
                expect.put(n, want.load("final." + n));
            }
        }
        // Lion steps by a sign: elements with a near-zero momentum are counted and left out (CliOptimizerParityTest)
        Agreement.withinLeavingOut("lion with CoLLiE's default betas: weights vs torch's", have, expect, 1e-6, 1e-3);
    }

    @Test
    void trainRunsAUserOptimizerGivenByClassName(@TempDir Path tmp) {
        CliTest.Result r = CliTest.run("train", "--model", CliTest.TINY.toString(), "--data",
                CliTest.TINY.resolve("adamw_rows.jsonl").toString(), "--micro-batch", "2", "--steps", "3",
                "--optimizer", "dev.collie.examples.SgdMomentum", "--lr", "0.5", "--save", tmp.resolve("o").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("final loss: "), r.out());
        CliTest.Result bad = CliTest.run("train", "--model", CliTest.TINY.toString(), "--data",
                CliTest.TINY.resolve("adamw_rows.jsonl").toString(), "--optimizer", "com.example.Missing",
                "--save", tmp.resolve("p").toString());
        CliTest.assertUserError(bad, "--optimizer: class com.example.Missing not found on the class path");
    }
}
