package dev.collie.parallel.peft;

import dev.collie.core.CollieException;
import dev.collie.core.data.Dataset;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.tensor.Backends;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.optim.AdaLomo;
import dev.collie.optim.AdamW;
import dev.collie.parallel.Parallelism;
import dev.collie.parallel.testing.Fixtures;
import dev.collie.parallel.tp.TensorParallel;
import dev.collie.peft.LoraConfig;
import dev.collie.peft.Peft;
import dev.collie.peft.PeftConfig;
import dev.collie.peft.PeftModel;
import dev.collie.peft.PrefixTuningConfig;
import dev.collie.peft.PromptEncoderConfig;
import dev.collie.peft.PromptTuningConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The oracle for PEFT under parallelism: {@code Peft.wrap(model, config)}, then
 * {@code Parallelism.build(world, peftModel, trainable)} trains the adapter for 5 AdamW steps with the losses,
 * gradient norms and adapter weights of one rank, and the adapter the lead rank saves from the gathered weights is
 * the single rank's. LoRA on all seven projections (column- and row-parallel bases) under tp 2, pp 2, tp 2 × pp 2,
 * dp 2 (ZeRO 0–3), dp 2 × tp 2 and dp 2 × tp 2 × pp 2; LoRA with dropout under tp and pp; prompt tuning, P-tuning and
 * prefix tuning (with and without projection) under tp 2, pp 2, tp 2 × pp 2, dp 2 × pp 2 (ZeRO 0 and 1) and
 * dp 2 × tp 2 × pp 2 (ZeRO-1). fp32 to 1e-5, float64 to 1e-12 (lr 1e-3: see {@code ParallelEquivalenceTest} on fp32
 * noise under AdamW).
 */
@NumericalParity
class PeftParallelEquivalenceTest {
    private static final Path TINY = Path.of("../collie-models/src/test/resources/fixtures/tiny-llama");
    private static final int STEPS = 5;
    private static final int MICRO = 2;
    private static final int ACCUM = 2;
    private static final double TOL_FP32 = 1e-5;
    private static final double TOL_FP64 = 1e-12;
    private static final Map<String, Reference> REFERENCES = new HashMap<>();

    @TempDir
    static Path tmp;

    /** The single-rank run: losses, gradient norms, adapter weights by parameter name, the saved adapter dir. */
    private record Reference(List<Double> losses, List<Double> gradNorms, Map<String, INDArray> adapter, Path dir) {
    }

    @AfterAll
    static void restoreOpThreads() {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }

    static PeftConfig config(String method) {
        return switch (method) {
            case "lora" -> LoraConfig.builder().r(4).alpha(8).dropout(0)
                    .targets("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj").build();
            case "lora-dropout" -> LoraConfig.builder().r(4).alpha(8).dropout(0.1).seed(5)
                    .targets("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj").build();
            case "prompt" -> PromptTuningConfig.of(4);
            case "p-tuning" -> PromptEncoderConfig.of(3, 20);
            case "prefix" -> PrefixTuningConfig.of(3);
            case "prefix-projection" -> PrefixTuningConfig.withProjection(3, 24);
            default -> throw new IllegalArgumentException(method);
        };
    }

    /** The tiny LLaMA with the adapter; adapter weights from the parameter names (the same on every rank and thread). */
    static PeftModel model(String method, DataType dtype) {
        PeftModel m = Peft.wrap(DecoderCheckpoint.load(TINY, dtype), config(method));
        new TreeMap<>(Peft.trainableNamedParameters(m)).forEach((name, p) -> {
            Random rnd = new Random(name.hashCode());
            double scale = name.contains("lora_") ? 0.1 : 0.5;     // lora_B non-zero: B = 0 would hide mistakes
            double[] v = new double[(int) p.numel()];
            for (int i = 0; i < v.length; i++) {
                v[i] = rnd.nextGaussian() * scale;
            }
            p.data().assign(Nd4j.create(v, p.shape(), 'c').castTo(dtype));
        });
        return m;
    }

    static Dataset rows(int n) {
        return Fixtures.causalRows(n, 12, 96, 7);
    }

    static CollieConfig trainConfig(int microBatch) {
        return CollieConfig.builder().shuffle(false).lr(1e-3).trainMicroBatchSize(microBatch)
                .gradientAccumulationSteps(ACCUM).maxSteps(STEPS).workerThreads(1).clipGradNorm(1.0).build();
    }

    /** One rank with all of a step's rows (micro-batch MICRO × dp), one worker thread. */
    private static synchronized Reference reference(String method, int dp, DataType dtype) {
        return REFERENCES.computeIfAbsent(method + "/" + dp + "/" + dtype, k -> {
            PeftModel m = model(method, dtype);
            Map<String, Parameter> trainable = Peft.trainableNamedParameters(m);
            List<StepStats> stats = Trainer.builder().model(m).optimizer(adamw(trainable))
                    .config(trainConfig(MICRO * dp)).trainData(rows(STEPS * MICRO * ACCUM * dp)).build().train();
            Map<String, INDArray> adapter = new TreeMap<>();
            trainable.forEach((n, p) -> adapter.put(n, p.data().dup()));
            Path dir = tmp.resolve("reference-" + k.replace('/', '-'));
            m.saveAdapter(dir);
            return new Reference(stats.stream().map(StepStats::loss).toList(),
                    stats.stream().map(StepStats::gradNorm).toList(), adapter, dir);
        });
    }

    /** dp, tp, pp, zero for the prompt methods. */
    private static final int[][] PROMPT_LAYOUTS = {{1, 2, 1, 0}, {1, 1, 2, 0}, {1, 2, 2, 0}, {2, 1, 2, 0}, {2, 1, 2, 1},
        {2, 2, 2, 1}};

    static Stream<Arguments> layouts() {
        List<Arguments> out = new ArrayList<>();
        int[][] lora = {{1, 2, 1, 0}, {1, 1, 2, 0}, {1, 2, 2, 0}, {2, 1, 1, 0}, {2, 1, 1, 1}, {2, 1, 1, 2}, {2, 1, 1, 3},
            {2, 2, 1, 0}, {2, 2, 2, 1}};
        for (DataType dt : new DataType[] {DataType.DOUBLE, DataType.FLOAT}) {
            for (int[] l : lora) {
                out.add(Arguments.of("lora", l[0], l[1], l[2], l[3], dt));
            }
            // dropout: the masks follow each layer's own call counter, so layouts that keep the rows together agree
            for (int[] l : new int[][] {{1, 2, 1, 0}, {1, 1, 2, 0}, {1, 2, 2, 0}}) {
                out.add(Arguments.of("lora-dropout", l[0], l[1], l[2], l[3], dt));
            }
            // the prompt methods under tensor parallelism, and cut into pipeline stages: prompt tuning's and
            // P-tuning's encoder on the first stage (the virtual-token layer), prefix tuning's on every stage
            for (String m : new String[] {"prompt", "p-tuning", "prefix", "prefix-projection"}) {
                for (int[] l : PROMPT_LAYOUTS) {
                    out.add(Arguments.of(m, l[0], l[1], l[2], l[3], dt));
                }
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}: dp {1} tp {2} pp {3} zero {4} {5}")
    @MethodSource("layouts")
    void trainsTheAdapterAsOneRankDoes(String method, int dp, int tp, int pp, int zero, DataType dtype) throws Exception {
        Reference ref = reference(method, dp, dtype);
        double tol = dtype == DataType.DOUBLE ? TOL_FP64 : TOL_FP32;
        int world = dp * tp * pp;
        Path dir = tmp.resolve(method + "-" + dp + tp + pp + zero + "-" + dtype);
        List<Object[]> results = Ranks.run(world, 120, c -> {
            PeftModel m = model(method, dtype);
            try (Parallelism par = Parallelism.builder().dp(dp).tp(tp).pp(pp).zero(zero)
                    .build(c, m, Peft.trainableNamedParameters(m))) {
                List<StepStats> stats = par.configure(Trainer.builder()).optimizer(adamw(par.optimizerParameters()))
                        .config(trainConfig(MICRO)).trainData(rows(STEPS * MICRO * ACCUM * dp)).localRanks(world)
                        .build().train();
                for (Parameter p : m.base().module().parameters()) {
                    if (!p.requiresGrad()) {
                        assertEquals(0, p.gradientBufferBytes(), "a frozen base parameter holds a gradient buffer");
                    }
                }
                if (tp > 1 && method.startsWith("lora")) {
                    CollieException e = assertThrows(CollieException.class, () -> m.saveAdapter(dir.resolve("x")));
                    assertTrue(e.getMessage().contains("gather"), e.getMessage());
                }
                Map<String, INDArray> full = par.gatherFullWeights();
                Map<String, INDArray> adapter = null;
                if (full != null) {
                    m.saveAdapter(dir, full);
                    adapter = new TreeMap<>();
                    for (String n : ref.adapter().keySet()) {
                        assertNotNull(full.get(n), n + " was not gathered");
                        adapter.put(n, full.get(n).dup());
                    }
                }
                // every rank loads the single rank's adapter back into its shards: gathered again, it is that adapter
                // (an MLP encoder's saved output loads only into a fresh, flat model: Peft.loadAdapter)
                // (and ZeRO-3 keeps parameters on their owners between uses: nothing to load into here)
                boolean loadBack = !method.equals("prefix-projection") && !method.equals("p-tuning") && zero < 3;
                if (loadBack) {
                    m.loadAdapterWeights(ref.dir());
                }
                Map<String, INDArray> again = par.gatherFullWeights();
                if (again != null && loadBack && method.startsWith("lora")) {
                    try (SafeTensors st = SafeTensors.open(ref.dir().resolve("adapter_model.safetensors"))) {
                        for (String n : ref.adapter().keySet()) {
                            INDArray file = st.load("base_model.model." + n, again.get(n).dataType());
                            assertEquals(0.0, maxDiff(file, again.get(n)), n + " loaded into shards and gathered");
                        }
                    }
                }
                return new Object[] {stats.stream().map(StepStats::loss).toList(),
                        stats.stream().map(StepStats::gradNorm).toList(), adapter};
            }
        });
        Object[] lead = results.get(0);
        @SuppressWarnings("unchecked") List<Double> losses = (List<Double>) lead[0];
        @SuppressWarnings("unchecked") List<Double> norms = (List<Double>) lead[1];
        @SuppressWarnings("unchecked") Map<String, INDArray> adapter = (Map<String, INDArray>) lead[2];
        assertEquals(STEPS, losses.size());
        String what = String.format("%s dp %d tp %d pp %d zero %d %s", method, dp, tp, pp, zero, dtype);
        double worstLoss = 0;
        double worstNorm = 0;
        for (int s = 0; s < STEPS; s++) {
            worstNorm = Math.max(worstNorm, Math.abs(ref.gradNorms().get(s) - norms.get(s)) / Math.max(1, norms.get(s)));
            worstLoss = Math.max(worstLoss, Math.abs(ref.losses().get(s) - losses.get(s)));
        }
        Agreement.within(what + ": losses", worstLoss, tol);
        Agreement.within(what + ": gradient norms (relative)", worstNorm, tol);
        Agreement.within(what + ": adapter", Agreement.maxAbsDiff(adapter, ref.adapter()), tol);
        // the saved files: float32 tensors (peft's), so a float64 run agrees to float32 rounding
        double worstFile = 0;
        try (SafeTensors a = SafeTensors.open(ref.dir().resolve("adapter_model.safetensors"));
             SafeTensors b = SafeTensors.open(dir.resolve("adapter_model.safetensors"))) {
            assertEquals(a.names(), b.names());
            for (String n : a.names()) {
                assertEquals(Arrays.toString(a.info(n).shape()), Arrays.toString(b.info(n).shape()), n);
                worstFile = Math.max(worstFile, maxDiff(a.load(n, DataType.DOUBLE), b.load(n, DataType.DOUBLE)));
            }
        }
        Agreement.within(what + ": saved adapter file", worstFile, dtype == DataType.DOUBLE ? 1e-6 : tol);
        assertEquals(Files.readString(ref.dir().resolve("adapter_config.json")),
                Files.readString(dir.resolve("adapter_config.json")));
    }

    /**
     * A fused-backward optimizer with whole-tensor statistics (AdaLomo: row/column means of each gradient, an update
     * RMS) on the split adapter: its shards carry the split tag the standard layers give theirs, so the statistics are
     * the unsplit tensor's. One micro-batch of 4 rows per step (fused optimizers take no accumulation). A prefix
     * encoder, which every pipeline stage holds, is updated once its stages' gradients are summed (deferred hooks).
     */
    @ParameterizedTest(name = "AdaLomo {0} tp {1} pp {2} {3}")
    @MethodSource("adaLomoLayouts")
    void adapterWithAdaLomoTrainsAsOneRankDoes(String method, int tp, int pp, DataType dtype) throws Exception {
        double tol = dtype == DataType.DOUBLE ? TOL_FP64 : TOL_FP32;
        CollieConfig cfg = CollieConfig.builder().shuffle(false).lr(1e-2).trainMicroBatchSize(4)
                .gradientAccumulationSteps(1).maxSteps(STEPS).workerThreads(1).clipGradNorm(0).build();
        PeftModel one = model(method, dtype);
        List<Double> refLosses = Trainer.builder().model(one)
                .optimizer(adaLomo(Peft.trainableNamedParameters(one)))
                .config(cfg).trainData(rows(STEPS * 4)).build().train().stream().map(StepStats::loss).toList();
        Map<String, Parameter> refAdapter = Peft.trainableNamedParameters(one);
        int world = tp * pp;
        List<Object[]> got = Ranks.run(world, 120, c -> {
            PeftModel m = model(method, dtype);
            try (Parallelism par = Parallelism.builder().tp(tp).pp(pp).build(c, m, Peft.trainableNamedParameters(m))) {
                List<Double> losses = par.configure(Trainer.builder())
                        .optimizer(adaLomo(par.optimizerParameters()))
                        .config(cfg).trainData(rows(STEPS * 4)).localRanks(world).build().train()
                        .stream().map(StepStats::loss).toList();
                return new Object[] {losses, par.gatherFullWeights()};
            }
        });
        @SuppressWarnings("unchecked") List<Double> losses = (List<Double>) got.get(0)[0];
        @SuppressWarnings("unchecked") Map<String, INDArray> full = (Map<String, INDArray>) got.get(0)[1];
        String what = String.format("%s AdaLomo tp %d pp %d %s", method, tp, pp, dtype);
        double worstLoss = 0;
        for (int s = 0; s < STEPS; s++) {
            worstLoss = Math.max(worstLoss, Math.abs(refLosses.get(s) - losses.get(s)));
        }
        Agreement.within(what + ": losses", worstLoss, tol);
        double worst = 0;
        for (Map.Entry<String, Parameter> e : refAdapter.entrySet()) {
            worst = Math.max(worst, maxDiff(e.getValue().data(), full.get(e.getKey())));
        }
        Agreement.within(what + ": adapter", worst, tol);
    }

    /** AdamW with eps above the gradients' summation-order noise: a well-conditioned fp32 comparison ({@link Agreement}). */
    private static Optimizer adamw(Map<String, Parameter> params) {
        return new AdamW(params, 0.9, 0.999, Agreement.ADAM_EPS_ABOVE_NOISE, 0.01);
    }

    /** AdaLomo with CoLLiE's settings but eps1 above the noise ({@link Agreement#ADALOMO_EPS1_ABOVE_NOISE}). */
    private static Optimizer adaLomo(Map<String, Parameter> params) {
        return new AdaLomo(params, Agreement.ADALOMO_EPS1_ABOVE_NOISE, 1e-3, 1.0, -0.8, 0, 0, 0);
    }

    static Stream<Arguments> adaLomoLayouts() {
        List<Arguments> out = new ArrayList<>();
        for (DataType dt : new DataType[] {DataType.DOUBLE, DataType.FLOAT}) {
            out.add(Arguments.of("lora", 2, 1, dt));
            out.add(Arguments.of("lora", 2, 2, dt));
            out.add(Arguments.of("prefix", 1, 2, dt));
            out.add(Arguments.of("prefix", 2, 2, dt));
            out.add(Arguments.of("prefix-projection", 1, 2, dt));
            out.add(Arguments.of("p-tuning", 2, 2, dt));
        }
        return out.stream();
    }

    static double maxDiff(INDArray a, INDArray b) {
        assertEquals(Arrays.toString(a.shape()), Arrays.toString(b.shape()));
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }

    /**
     * ZeRO-2 keeps each reduced gradient on one data-parallel owner per stage, so a weight several stages hold cannot
     * be summed over them: prefix tuning's encoder (on every stage) is refused with pipeline parallelism, prompt
     * tuning's (first stage only) is not.
     */
    @ParameterizedTest
    @ValueSource(strings = {"prefix", "prefix-projection"})
    void zero2RefusesAPrefixEncoderThatEveryStageHolds(String method) throws Exception {
        List<String> messages = Ranks.run(4, c -> {
            PeftModel m = model(method, DataType.FLOAT);
            try {
                Parallelism.builder().dp(2).pp(2).zero(2).build(c, m, Peft.trainableNamedParameters(m)).close();
                return "built";
            } catch (CollieException e) {
                return e.getMessage();
            }
        });
        for (String msg : messages) {
            assertTrue(msg.contains("zero stage 2") && msg.contains("prompt_encoder.embedding.weight")
                    && msg.contains("several pipeline stages"), msg);
        }
    }

    /** Bytes one rank sends for one training forward/backward of a [2, 12] micro-batch under tp 2. */
    private static long bytesPerMicroBatch(String method) throws Exception {
        List<Long> sent = Ranks.run(2, c -> {
            LanguageModel m = method.equals("none") ? DecoderCheckpoint.load(TINY, DataType.FLOAT)
                    : model(method, DataType.FLOAT);
            var tpModel = TensorParallel.apply(m, c);
            INDArray ids = Nd4j.zeros(DataType.INT64, 2, 12);
            long before = c.bytesSent();
            Tape tape = Tape.forTraining(2, 12);
            INDArray logits = tpModel.forward(tape, ids);
            tpModel.backward(tape, Nd4j.rand(DataType.FLOAT, logits.shape()).subi(0.5));
            return c.bytesSent() - before;
        });
        assertEquals(sent.get(0), sent.get(1));
        return sent.get(0);
    }

    /**
     * What the adapters' collectives cost on top of tensor parallelism itself, per rank and micro-batch (fp32, ring
     * over 2 ranks: each rank sends the payload once): LoRA on all seven projections of the 2-layer tiny LLaMA, rows
     * 24, r 4: five column-parallel bases × r·min(rows, in) + two row-parallel ones × rows·r = 7 × 96 floats a layer;
     * prefix tuning: its key/value gradient, 3 tokens × 2 layers × 2 × 16 floats; prompt tuning: nothing of its own.
     */
    @Test
    void bytesTheAdaptersAddPerMicroBatch() throws Exception {
        long none = bytesPerMicroBatch("none");
        long lora = bytesPerMicroBatch("lora") - none;
        long prefix = bytesPerMicroBatch("prefix") - none;
        long prompt = bytesPerMicroBatch("prompt") - bytesPerMicroBatchOfAPromptOfLength(4);
        System.out.printf("tp 2, [2, 12] micro-batch, fp32: base %d B/rank; LoRA adds %d B, prefix %d B, prompt %d B%n",
                none, lora, prefix, prompt);
        assertEquals(2L * 7 * 4 * 24 * 4, lora);
        assertEquals(3L * 2 * 2 * 16 * 4, prefix);
        // prompt tuning adds no collective: against a 16-token base it saves the embedding's all-reduce of the
        // 4 virtual positions (2 rows × 4 × hidden 32 floats), which come from the (replicated) prompt table
        assertEquals(-2L * 4 * 32 * 4, prompt);
    }

    /** Prompt tuning lengthens every sequence, so the base's own collectives grow: the same rows without an adapter. */
    private static long bytesPerMicroBatchOfAPromptOfLength(int n) throws Exception {
        List<Long> sent = Ranks.run(2, c -> {
            var tpModel = TensorParallel.apply(DecoderCheckpoint.load(TINY, DataType.FLOAT), c);
            INDArray ids = Nd4j.zeros(DataType.INT64, 2, 12 + n);
            long before = c.bytesSent();
            Tape tape = Tape.forTraining(2, 12 + n);
            INDArray logits = tpModel.forward(tape, ids);
            tpModel.backward(tape, Nd4j.rand(DataType.FLOAT, logits.shape()).subi(0.5));
            return c.bytesSent() - before;
        });
        return sent.get(0);
    }

    @Test
    void theLeadRankSavesTheGatheredAdapterOnly() throws Exception {
        // a selection gathers only the adapter; the lead rank's map has exactly the adapter's names
        List<Map<String, INDArray>> got = Ranks.run(2, c -> {
            PeftModel m = model("lora", DataType.FLOAT);
            Map<String, Parameter> trainable = Peft.trainableNamedParameters(m);
            var tpModel = TensorParallel.apply(m, c);
            Map<String, INDArray> adapter = TensorParallel.gatherFullWeights(tpModel, c,
                    trainable::containsKey);
            if (c.rank() == 0) {
                m.saveAdapter(tmp.resolve("selection"), adapter);
            }
            return adapter;
        });
        PeftModel whole = model("lora", DataType.FLOAT);
        Map<String, Parameter> expect = Peft.trainableNamedParameters(whole);
        assertEquals(expect.keySet(), got.get(0).keySet());
        expect.forEach((n, p) -> assertEquals(0.0, maxDiff(p.data(), got.get(0).get(n)), n));
        PeftModel loaded = Peft.loadAdapter(DecoderCheckpoint.load(TINY, DataType.FLOAT), tmp.resolve("selection"));
        Peft.trainableNamedParameters(loaded).forEach((n, p) -> assertEquals(0.0, maxDiff(expect.get(n).data(), p.data()), n));
    }
}
