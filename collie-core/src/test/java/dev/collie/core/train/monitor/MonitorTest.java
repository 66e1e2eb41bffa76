package dev.collie.core.train.monitor;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.data.Dataset;
import dev.collie.core.optim.Sgd;
import dev.collie.core.testing.ToyLanguageModel;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The monitor on a real training run: what each file holds, at which steps, and that they agree. */
class MonitorTest {
    private static final int VOCAB = 24;
    private static final List<String> TRAIN_COLUMNS = List.of("loss", "lr", "tgs", "tokens_per_s", "grad_norm",
            "memory_mib", "offheap_mib", "step_seconds", "tokens", "epoch", "comm_bytes");

    /** Learning rates are drawn in units that keep XChart's "equally spaced" tick labels away (see Dashboard). */
    @Test
    void smallValuesAreDrawnInUnitsOfAPowerOfTen() {
        assertEquals(1000, Dashboard.unitScale(new double[] {1e-3, 5e-4, 0}));
        assertEquals(1e5, Dashboard.unitScale(new double[] {3e-5}), 1e-6);
        assertEquals(1, Dashboard.unitScale(new double[] {0.5, 8.3}));
        assertEquals(1, Dashboard.unitScale(new double[0]));
    }

    @Test
    void aRunWritesEveryNthStepAndEachEvaluationToAllThreeFilesAndTheDashboard(@TempDir Path dir) throws IOException {
        ToyLanguageModel m = new ToyLanguageModel(VOCAB, 8, DataType.DOUBLE, 7);
        Dataset rows = ToyLanguageModel.rows(9, 0, VOCAB, 5);
        AtomicLong sent = new AtomicLong(5000);
        // a communicator that sends 1000 bytes during each step
        Callback traffic = new Callback() {
            @Override
            public void onBatchEnd(Trainer t, StepStats s) {
                sent.addAndGet(1000);
            }
        };
        Monitor monitor = new Monitor(new MonitorConfig(dir, List.of("csv", "jsonl", "tensorboard"), 2, true),
                sent::get);
        Trainer trainer = Trainer.builder().model(m).optimizer(new Sgd(m.namedParameters()))
                .config(CollieConfig.builder().shuffle(false).lr(0.5).evalPerNSteps(4).build()).trainData(rows)
                .evalData(rows).callbacks(traffic, monitor).build();
        List<StepStats> steps = trainer.train();
        assertEquals(9, steps.size());
        Path png = dir.resolve("dashboard.png");
        BufferedImage image = ImageIO.read(png.toFile());
        assertEquals(2 * 640, image.getWidth());
        assertEquals(2 * 400, image.getHeight());
        Files.delete(png);
        Map<String, Double> last = trainer.evaluate();      // after the run: logged, the dashboard drawn again
        assertTrue(Files.exists(png), "the dashboard again after the last evaluation");

        // metrics.csv: steps 2, 4, 6, 8 and the last, 9, each the step's own figures
        List<String> csv = Files.readAllLines(dir.resolve("metrics.csv"));
        assertEquals("step,wall_time," + String.join(",", TRAIN_COLUMNS), csv.get(0));
        List<Long> logged = List.of(2L, 4L, 6L, 8L, 9L);
        assertEquals(logged.size() + 1, csv.size(), csv.toString());
        for (int i = 0; i < logged.size(); i++) {
            String[] f = csv.get(i + 1).split(",");
            StepStats s = steps.get((int) (long) logged.get(i) - 1);
            assertEquals(logged.get(i), Long.parseLong(f[0]));
            assertEquals(s.loss(), Double.parseDouble(f[2]), "loss of step " + s.step());
            assertEquals(s.lr(), Double.parseDouble(f[3]));
            assertEquals(s.tgs(), Double.parseDouble(f[4]));
            assertEquals(s.tokensPerSecond(), s.tgs(), 1e-9 * s.tgs(), "one rank: TGS = tokens/s");
            assertEquals(s.gradNorm(), Double.parseDouble(f[6]));
            assertEquals(s.residentBytes() / 1048576.0, Double.parseDouble(f[7]));
            assertTrue(Double.parseDouble(f[8]) > 0, "ND4J's arrays take memory: " + f[8]);
            assertEquals(s.seconds(), Double.parseDouble(f[9]));
            assertEquals(s.tokens(), Long.parseLong(f[10]));
            assertEquals("1000", f[12], "bytes sent during step " + s.step());
        }
        assertEquals(List.of("step,wall_time,loss,ppl"), Files.readAllLines(dir.resolve("eval.csv")).subList(0, 1));
        assertEquals(4, Files.readAllLines(dir.resolve("eval.csv")).size(), "evaluations after steps 4, 8 and 9");

        // metrics.jsonl: the same records in order of time, the evaluations among them
        ObjectMapper json = new ObjectMapper();
        List<JsonNode> lines = new ArrayList<>();
        for (String l : Files.readAllLines(dir.resolve("metrics.jsonl"))) {
            lines.add(json.readTree(l));
        }
        List<String> order = new ArrayList<>();
        for (JsonNode n : lines) {
            order.add((n.has("eval/loss") ? "eval " : "train ") + n.get("step").longValue());
        }
        assertEquals(List.of("train 2", "train 4", "eval 4", "train 6", "train 8", "eval 8", "train 9", "eval 9"),
                order);
        assertEquals(last.get("ppl"), lines.get(7).get("eval/ppl").doubleValue());

        // the event file: TensorBoard's tags at the same steps with the JSONL's values as float32
        Path events;
        try (var s = Files.list(dir)) {
            events = s.filter(p -> p.getFileName().toString().startsWith("events.out.tfevents.")).findFirst()
                    .orElseThrow();
        }
        Map<String, List<EventFileReader.Event>> byTag = new HashMap<>();
        List<EventFileReader.Event> all = EventFileReader.events(events);
        assertNotNull(all.get(0).fileVersion());
        for (EventFileReader.Event e : all.subList(1, all.size())) {
            byTag.computeIfAbsent(e.tag(), k -> new ArrayList<>()).add(e);
        }
        int points = 0;
        Map<String, Iterator<EventFileReader.Event>> next = new HashMap<>();
        byTag.forEach((tag, list) -> next.put(tag, list.iterator()));
        for (JsonNode n : lines) {
            for (Iterator<String> keys = n.fieldNames(); keys.hasNext(); ) {
                String k = keys.next();
                if (k.equals("step") || k.equals("wall_time")) {
                    continue;
                }
                EventFileReader.Event e = next.get(k).next();
                assertEquals(n.get("step").longValue(), e.step(), k);
                assertEquals(n.get("wall_time").doubleValue(), e.wallTime(), k);
                float want = n.get(k).isNull() ? Float.NaN : (float) n.get(k).doubleValue();
                assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(e.value()), k + " at " + e.step());
                points++;
            }
        }
        next.forEach((tag, it) -> assertFalse(it.hasNext(), tag + " has more events than the JSONL"));
        assertEquals(5 * TRAIN_COLUMNS.size() + 3 * 2, points);
        assertTrue(byTag.keySet().containsAll(List.of("train/loss", "train/lr", "train/tgs", "train/tokens_per_s",
                "train/grad_norm", "train/memory_mib", "eval/loss", "eval/ppl")), byTag.keySet().toString());

        assertTrue(monitor.overheadSeconds() > 0);
        assertEquals(steps.stream().mapToDouble(StepStats::seconds).sum(), monitor.stepSeconds(), 1e-9);
    }
}
