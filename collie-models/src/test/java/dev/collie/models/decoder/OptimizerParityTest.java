package dev.collie.models.decoder;

import dev.collie.core.data.Dataset;
import dev.collie.core.data.JsonlDataset;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.tensor.Kernels;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.optim.AdaLomo;
import dev.collie.optim.Adan;
import dev.collie.optim.Lion;
import dev.collie.optim.Lomo;
import dev.collie.optim.SophiaG;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Three steps of each optimizer on the tiny LLaMA in float32 against independent float32 PyTorch
 * implementations of the published rules (fixtures/optimizers, made by
 * tools/reference/make_optimizer_fixtures.py), on the three AdamW-parity batches in file order.
 * Step optimizers and the fused ones run through the Trainer (so LOMO/AdaLomo take their two-pass path
 * when they clip by norm); SophiaG is driven by hand so its Hessian backward can use the stored labels.
 *
 * <p>Two error measures per tensor, the worst tensor reported: {@code weights} = max|θ_java − θ_torch| /
 * max|θ_torch| and {@code update} = max|θ_java − θ_torch| / max|θ_torch − θ_0| (how much of the change
 * the three steps made is wrong: this is what makes the check meaningful). Losses agree to 1e-6 relative
 * and Lion, LOMO and AdaLomo weights to 1e-6 relative. Adan and SophiaG divide each element's momentum by
 * a per-element statistic of the same gradient (Adan: sqrt(n) ~ |g|; Sophia: ρ·bs·h ~ ĝ²), so each
 * element moves by about lr whatever the size of its gradient, and its error is lr times the relative
 * error of that element's gradient. ND4J and PyTorch sum the matmul products of a gradient in different
 * orders, which leaves an absolute error of ~1e-7 of the largest products; for the smallest gradient
 * elements that is a relative error of 1e-4..1e-3, hence errors up to ~4e-7 absolute at lr 1e-3
 * (measured 2.5e-6 and 5.9e-6 relative to the weights, 5.6e-5 and 1.4e-4 of the update). They are asserted
 * at 2e-5 of the weights and 1e-3 of the update; their rules are also checked alone in float64, on the
 * gradients the float64 PyTorch run stored ({@code adan_f64}, {@code sophia_f64}), to 1e-12, and alone in
 * float32 on those gradients rounded to float32, against PyTorch's float32 rule on the same ({@code
 * adan_rule_f32}, {@code sophia_rule_f32}: 1.1e-7 and 8.1e-7 of the weights), to 1e-6. The end-to-end runs of Lion, Adan and
 * Sophia leave out, count and bound ({@link #LEAVE_OUT_SHARE}) the elements off by more than their weight bound: on
 * another CPU's kernels an element whose momentum is within summation-order noise of zero can take a step of the
 * other sign (Lion's smallest |c| here is 1.3e-4 of its two terms, inside the 1e-4..1e-3 relative error of the
 * smallest gradient elements).
 */
@NumericalParity
class OptimizerParityTest {
    private static final Path TINY = LlamaParityTest.FIXTURES.resolve("tiny-llama");
    private static final Path REF = LlamaParityTest.FIXTURES.resolve("optimizers");
    private static final Dataset ROWS = JsonlDataset.load(TINY.resolve("adamw_rows.jsonl"), null, 0, 96);

    /**
     * Max over tensors of {@code max|θ_java − θ_torch| / max|θ_torch|}, and of the same for the weight change, over
     * the elements not left out; how many were left out, of how many.
     */
    record Parity(String name, double weights, double update, double loss, long leftOut, long total) {
    }

    /**
     * End-to-end fp32 runs of the rules that step by a sign or divide by a per-element statistic (Lion, Adan, Sophia):
     * an element off by more than the weight bound is left out and counted ({@link Agreement#withinLeavingOut}); at
     * most this share of all elements may be. Their rules are checked alone, with none left out, on stored gradients.
     */
    private static final double LEAVE_OUT_SHARE = 1e-3;

    private static Parity compare(String name, DecoderForCausalLM model, double[] losses) {
        return compare(name, model, losses, Double.POSITIVE_INFINITY);
    }

    /** {@link #compare}, leaving out elements off by more than {@code leaveOutAbove} × max|θ_torch| of their tensor. */
    private static Parity compare(String name, DecoderForCausalLM model, double[] losses, double leaveOutAbove) {
        DecoderForCausalLM start = DecoderCheckpoint.load(TINY, model.parameters().get(0).dtype());
        double weights = 0;
        double update = 0;
        double loss = 0;
        long leftOut = 0;
        long total = 0;
        try (SafeTensors ref = SafeTensors.open(REF.resolve(name + ".safetensors"))) {
            for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
                INDArray got = e.getValue().data().castTo(DataType.DOUBLE);
                INDArray want = ref.load("final." + e.getKey(), DataType.DOUBLE).reshape(got.shape());
                INDArray init = start.namedParameters().get(e.getKey()).data().castTo(DataType.DOUBLE);
                double scale = want.amaxNumber().doubleValue();
                double diff = 0;
                for (double d : Transforms.abs(got.sub(want)).reshape(-1).toDoubleVector()) {
                    if (d > leaveOutAbove * scale) {
                        leftOut++;
                    } else {
                        diff = Math.max(diff, d);
                    }
                }
                total += got.length();
                weights = Math.max(weights, diff / scale);
                double moved = want.sub(init).amaxNumber().doubleValue();
                assertTrue(moved > 0, name + ": " + e.getKey() + " did not move in the reference");
                update = Math.max(update, diff / moved);
            }
            INDArray want = ref.load("losses", DataType.DOUBLE);
            for (int k = 0; k < 3; k++) {
                loss = Math.max(loss, Math.abs(losses[k] - want.getDouble(k)) / want.getDouble(k));
            }
        }
        return new Parity(name, weights, update, loss, leftOut, total);
    }

    private static Parity viaTrainer(String name, double lr, Function<DecoderForCausalLM, Optimizer> opt) {
        return viaTrainer(name, lr, opt, Double.POSITIVE_INFINITY);
    }

    private static Parity viaTrainer(String name, double lr, Function<DecoderForCausalLM, Optimizer> opt,
                                     double leaveOutAbove) {
        DecoderForCausalLM model = DecoderCheckpoint.load(TINY, DataType.FLOAT);
        List<StepStats> stats = Trainer.builder().model(model).optimizer(opt.apply(model))
                .config(CollieConfig.builder().trainMicroBatchSize(2).shuffle(false).lr(lr).build())
                .trainData(ROWS).build().train();
        assertEquals(3, stats.size());
        return compare(name, model, stats.stream().mapToDouble(StepStats::loss).toArray(), leaveOutAbove);
    }

    private static void within(Parity p, double weights, double update) {
        Agreement.within(p.name() + ": losses (relative)", p.loss(), 1e-6);
        Agreement.within(p.name() + ": weights relative to their size", p.weights(), weights);
        Agreement.within(p.name() + ": weights relative to the update", p.update(), update);
        Agreement.within(p.name() + ": elements left out", p.leftOut(), Math.floor(LEAVE_OUT_SHARE * p.total()));
    }

    @Test
    void lionMatchesTorch() {
        Parity p = viaTrainer("lion", 1e-3, m -> new Lion(m.namedParameters(), 0.9, 0.99, 0.1), 1e-6);
        within(p, 1e-6, 1e-4);
    }

    @Test
    void adanWithGlobalClipMatchesTorch() {
        Parity p = viaTrainer("adan", 1e-3, OptimizerParityTest::adan, 2e-5);
        within(p, 2e-5, 1e-3); // element-wise normalisation: see the class comment
    }

    /** Hands every parameter its stored gradient (as {@code dtype}) through the one door, as a backward would. */
    private static void deliver(DecoderForCausalLM model, SafeTensors ref, String prefix, DataType dtype) {
        Tape tape = Tape.forTraining(1, 1);
        model.namedParameters().forEach((n, p) -> {
            tape.use(p);
            p.accumulateGrad(tape, ref.load(prefix + n, dtype));
        });
    }

    /**
     * The update rule alone: three steps on the gradients the float64 PyTorch run stored in {@code gradients}
     * (and, for Sophia, its Hessian-estimate gradients), given as {@code dtype}, compared with {@code expected}
     * (the reference rule run in that dtype on the same gradients), so any difference is in the rule, not in
     * the model.
     */
    private static Parity ruleOnStoredGradients(String gradients, String expected, DataType dtype, double lr,
                                                Function<DecoderForCausalLM, Optimizer> make) {
        DecoderForCausalLM model = DecoderCheckpoint.load(TINY, dtype);
        Optimizer opt = make.apply(model);
        String first = model.namedParameters().keySet().iterator().next();
        try (SafeTensors ref = SafeTensors.open(REF.resolve(gradients + ".safetensors"))) {
            for (int k = 0; k < 3; k++) {
                deliver(model, ref, "grad.step" + k + ".", dtype);
                opt.step(lr);
                if (ref.contains("hessian_grad.step" + k + "." + first)) {
                    deliver(model, ref, "hessian_grad.step" + k + ".", dtype);
                    ((SophiaG) opt).updateHessian();
                    model.zeroGrad();
                }
            }
            return compare(expected, model, ref.load("losses", DataType.DOUBLE).toDoubleVector());
        }
    }

    private static Optimizer adan(DecoderForCausalLM m) {
        return new Adan(m.namedParameters(), 0.98, 0.92, 0.99, 1e-8, 0.02, 0.5, false);
    }

    private static Optimizer sophia(DecoderForCausalLM m) {
        return new SophiaG(m.namedParameters(), 0.965, 0.99, 0.04, 0.1, 5120, 1);
    }

    @Test
    void adanRuleMatchesTorchInFloat64() {
        within(ruleOnStoredGradients("adan_f64", "adan_f64", DataType.DOUBLE, 1e-3,
                OptimizerParityTest::adan), 1e-12, 1e-12);
    }

    /** The float32 rule on the same (rounded) gradients as PyTorch's float32 rule: within 1e-6 of the weights. */
    @Test
    void adanRuleMatchesTorchInFloat32() {
        within(ruleOnStoredGradients("adan_f64", "adan_rule_f32", DataType.FLOAT, 1e-3,
                OptimizerParityTest::adan), 1e-6, 1e-4);
    }

    @Test
    void sophiaRuleMatchesTorchInFloat32() {
        within(ruleOnStoredGradients("sophia_f64", "sophia_rule_f32", DataType.FLOAT, 1e-3,
                OptimizerParityTest::sophia), 1e-6, 1e-4);
    }

    @Test
    void lomoWithBothClipsMatchesTorchSgd() {
        Parity p = viaTrainer("lomo", 1.0, m -> new Lomo(m.namedParameters(), 0.5, 0.01, 0.1, null));
        within(p, 1e-6, 1e-4);
    }

    @Test
    void adaLomoMatchesTorch() {
        Parity p = viaTrainer("adalomo", 1e-2,
                m -> new AdaLomo(m.namedParameters(), 1e-30, 1e-3, 1.0, -0.8, 0, 0, 0.1));
        within(p, 1e-6, 1e-4);
    }

    @Test
    void adaLomoWithTwoPassNormClipAndValueClipMatchesTorch() {
        Parity p = viaTrainer("adalomo_clip", 1e-2,
                m -> new AdaLomo(m.namedParameters(), 1e-30, 1e-3, 1.0, -0.8, 0.5, 0.005, 0));
        within(p, 1e-6, 1e-4);
    }

    /**
     * Forward, mean cross-entropy of every position's logits against {@code labels} (not shifted: this is
     * the sampled-label loss of Sophia's Gauss-Newton-Bartlett estimator), backward, {@code updateHessian}.
     */
    static void hessianBackward(DecoderForCausalLM model, SophiaG opt, INDArray ids, INDArray labels) {
        Tape tape = Tape.forTraining((int) ids.size(0), (int) ids.size(1));
        INDArray logits = model.forward(tape, ids);
        INDArray[] r = Kernels.get().crossEntropy(logits, labels.reshape(labels.length()).castTo(DataType.INT64),
                CausalLmLoss.IGNORE_INDEX, true, 1.0);
        model.backward(tape, r[1]);
        opt.updateHessian();
        model.zeroGrad();
    }

    private static Parity sophiaByHand(String fixture, double leaveOutAbove) {
        DecoderForCausalLM model = DecoderCheckpoint.load(TINY, DataType.FLOAT);
        SophiaG opt = (SophiaG) sophia(model);
        CausalLmLoss loss = new CausalLmLoss();
        double[] losses = new double[3];
        try (SafeTensors batches = SafeTensors.open(TINY.resolve("adamw_reference.safetensors"));
             SafeTensors ref = SafeTensors.open(REF.resolve(fixture + ".safetensors"))) {
            for (int k = 0; k < 3; k++) {
                INDArray ids = batches.load("adamw/batch" + k + ".input_ids");
                Tape tape = Tape.forTraining(2, 12);
                losses[k] = loss.forward(tape, model.forward(tape, ids), ids);
                model.backward(tape, loss.backward(tape, 1.0));
                opt.step(1e-3);
                if (ref.names().contains("hessian.step" + k + ".labels")) {
                    hessianBackward(model, opt, ids, ref.load("hessian.step" + k + ".labels"));
                }
            }
        }
        assertEquals(2, opt.hessianUpdates());
        return compare(fixture, model, losses, leaveOutAbove);
    }

    @Test
    void sophiaWithHessianFromStoredLabelsMatchesTorch() {
        within(sophiaByHand("sophia", 2e-5), 2e-5, 1e-3); // element-wise normalisation: see the class comment
    }

    @Test
    void sophiaRuleMatchesTorchInFloat64() {
        Parity p = ruleOnStoredGradients("sophia_f64", "sophia_f64", DataType.DOUBLE, 1e-3,
                OptimizerParityTest::sophia);
        within(p, 1e-12, 1e-12);
    }

    @Test
    void trainerRefreshesSophiaHessianSoItDiffersFromSignMomentum() {
        DecoderForCausalLM withHessian = DecoderCheckpoint.load(TINY, DataType.FLOAT);
        DecoderForCausalLM without = DecoderCheckpoint.load(TINY, DataType.FLOAT);
        SophiaG refreshed = new SophiaG(withHessian.namedParameters(), 0.965, 0.99, 0.04, 0.1, 5120, 1);
        SophiaG never = new SophiaG(without.namedParameters(), 0.965, 0.99, 0.04, 0.1, 5120, 1000);
        CollieConfig config = CollieConfig.builder().trainMicroBatchSize(2).shuffle(false).lr(1e-3).build();
        Trainer.builder().model(withHessian).optimizer(refreshed).config(config).trainData(ROWS).build().train();
        Trainer.builder().model(without).optimizer(never).config(config).trainData(ROWS).build().train();
        assertEquals(3, refreshed.hessianUpdates());
        assertEquals(0, never.hessianUpdates());
        double hessianMass = 0;
        for (Map.Entry<String, INDArray> e : refreshed.stateDict().entrySet()) {
            if (e.getKey().endsWith(".hessian")) {
                assertTrue(e.getValue().minNumber().doubleValue() >= 0, e.getKey() + " has a negative entry");
                hessianMass += e.getValue().sumNumber().doubleValue();
            }
        }
        assertTrue(hessianMass > 0, "the Hessian estimate stayed zero");
        double differ = 0;
        for (Map.Entry<String, Parameter> e : withHessian.namedParameters().entrySet()) {
            differ = Math.max(differ, LlamaParityTest.maxAbsDiff(e.getValue().data(),
                    without.namedParameters().get(e.getKey()).data()));
        }
        assertTrue(differ > 1e-4, "Sophia with a Hessian moved like sign-momentum (max difference " + differ + ")");
    }
}
