package dev.collie.peft;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.data.Dataset;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.nn.Parameter;
import dev.collie.core.testing.ToyLanguageModel;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CheckpointCallback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.LoadBestModelCallback;
import dev.collie.core.train.LossHistory;
import dev.collie.core.train.TrackedMetric;
import dev.collie.core.train.Trainer;
import dev.collie.optim.AdamW;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A LoRA model under the callbacks that watch an evaluation value: the top k checkpoints hold the adapter of their
 * step, and loading the best back restores the adapter of the best evaluation while the frozen base stays as loaded.
 */
class AdapterTopKTest {
    private static final Dataset TRAIN = ToyLanguageModel.rows(12, 12, 96, 1);
    /** The first 4 training rows (the same seed): AdamW at lr 0.05 moves their loss down and up, best at step 6. */
    private static final Dataset EVAL = ToyLanguageModel.rows(4, 12, 96, 1);

    private static Map<String, INDArray> copies(Map<String, Parameter> ps) {
        Map<String, INDArray> out = new TreeMap<>();
        ps.forEach((n, p) -> out.put(n, p.data().dup()));
        return out;
    }

    private static double maxAbsDiff(Map<String, INDArray> a, Map<String, Parameter> b) {
        double d = 0;
        for (Map.Entry<String, INDArray> e : a.entrySet()) {
            d = Math.max(d, Fixtures.maxAbsDiff(e.getValue(), b.get(e.getKey()).data()));
        }
        return d;
    }

    private static Map<String, INDArray> saved(Path checkpoint, Iterable<String> names) {
        Map<String, INDArray> out = new TreeMap<>();
        try (SafeTensors st = SafeTensors.open(checkpoint.resolve("model.safetensors"))) {
            for (String n : names) {
                out.put(n, st.load(n, DataType.DOUBLE));
            }
        }
        return out;
    }

    @Test
    void topKKeepsTheAdapterOfEachBestStepAndLoadBestRestoresIt(@TempDir Path tmp) throws IOException {
        PeftModel m = Peft.wrap(Fixtures.tiny(DataType.DOUBLE), Fixtures.config("lora"));
        Map<String, Parameter> adapter = Peft.trainableNamedParameters(m.module());
        adapter.values().forEach(p -> p.data().addi(0.05));   // LoRA's B starts at zero, which leaves A no gradient
        Map<String, Parameter> all = m.namedParameters();
        Map<String, INDArray> base = copies(all);
        adapter.keySet().forEach(base::remove);

        Map<Long, Map<String, INDArray>> adapterAt = new TreeMap<>();
        Callback snapshots = new Callback() {
            @Override
            public void onEvaluateEnd(Trainer t, Map<String, Double> results) {
                adapterAt.put(t.globalStep(), copies(adapter));
            }
        };
        LossHistory h = new LossHistory();
        TrackedMetric loss = TrackedMetric.min("loss");
        CheckpointCallback top = CheckpointCallback.builder(tmp).topK(2, loss).build();
        LoadBestModelCallback best = new LoadBestModelCallback(tmp, loss, false);
        Trainer.builder().model(m).optimizer(new AdamW(adapter))
                .config(CollieConfig.builder().trainMicroBatchSize(2).evalPerNSteps(1).maxSteps(10).trainEpochs(2)
                        .lr(5e-2).build())
                .trainData(TRAIN).evalData(EVAL).callbacks(h, snapshots, top, best).build().train();

        List<LossHistory.Eval> ranked = h.evals().stream().sorted(Comparator.comparingDouble(LossHistory.Eval::loss))
                .toList();
        long bestStep = ranked.get(0).step();
        assertTrue(bestStep < 10, "the best evaluation is not the last: " + h.evals());
        assertEquals(Set.of(ranked.get(0).step(), ranked.get(1).step()), top.topKFolders().stream()
                .map(n -> stepOf(tmp.resolve(n))).collect(Collectors.toSet()));
        for (String folder : top.topKFolders()) {
            long step = stepOf(tmp.resolve(folder));
            Map<String, INDArray> kept = saved(tmp.resolve(folder), adapter.keySet());
            double d = 0;
            for (String n : adapter.keySet()) {
                d = Math.max(d, Fixtures.maxAbsDiff(adapterAt.get(step).get(n), kept.get(n)));
            }
            assertEquals(0.0, d, folder + ": the adapter of step " + step);
        }
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(3, s.filter(p -> !p.getFileName().toString().startsWith(".")).count());  // top 2 and best
        }
        assertEquals(bestStep, best.bestStep());
        assertEquals(0.0, maxAbsDiff(adapterAt.get(bestStep), adapter), "the adapter after loading the best");
        assertEquals(0.0, maxAbsDiff(base, all), "the frozen base");
    }

    private static long stepOf(Path checkpoint) {
        try {
            String manifest = Files.readString(checkpoint.resolve("trainer.json"));
            return new ObjectMapper().readTree(manifest).path("global_step").asLong();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }
}
