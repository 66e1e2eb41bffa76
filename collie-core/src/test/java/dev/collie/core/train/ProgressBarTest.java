package dev.collie.core.train;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProgressBarTest {
    private static StepStats step(long k, long total, double loss) {
        return new StepStats(k, total, 0, loss, 1e-3, Double.NaN, 1024, 0.1, 10240, 10240, 0, 0, false);
    }

    private static Map<String, Double> eval(double loss) {
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("loss", loss);
        m.put("ppl", Math.exp(loss));
        return m;
    }

    @Test
    void withoutATerminalPrintsAPlainLineEveryNStepsAndTheLast() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        ProgressBar bar = new ProgressBar(new PrintStream(buf, true, StandardCharsets.UTF_8), false, 2);
        bar.onTrainBegin(null);
        for (int k = 1; k <= 5; k++) {
            bar.onBatchEnd(null, step(k, 5, 4.0 - k * 0.1));
        }
        bar.onTrainEnd(null);
        String out = buf.toString(StandardCharsets.UTF_8);
        assertFalse(out.contains("\r"));
        String[] lines = out.split("\n");
        assertEquals(3, lines.length, out);
        assertTrue(lines[0].startsWith("step 2/5 [=======>            ] loss 3.8000 lr 1.00e-03 tok/s "), lines[0]);
        assertTrue(lines[1].startsWith("step 4/5 "), lines[1]);
        assertTrue(lines[2].startsWith("step 5/5 [====================] loss 3.5000"), lines[2]);
        assertTrue(lines[2].endsWith("eta 0:00"), lines[2]);
    }

    @Test
    void onATerminalRewritesOneLineAndPutsEvalResultsOnTheirOwnLine() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        ProgressBar bar = new ProgressBar(new PrintStream(buf, true, StandardCharsets.UTF_8), true, 10);
        bar.onTrainBegin(null);
        bar.onBatchEnd(null, step(1, 4, 3.0));
        bar.onBatchEnd(null, step(2, 4, 2.5));
        bar.onEvaluateEnd(null, eval(2.0));
        bar.onBatchEnd(null, step(3, 4, 2.25));
        bar.onTrainEnd(null);
        String out = buf.toString(StandardCharsets.UTF_8);
        assertEquals(3, out.chars().filter(c -> c == '\r').count(), out);
        String[] lines = out.split("\n");
        assertEquals(3, lines.length, out);
        assertTrue(lines[0].startsWith("\rstep 1/4 ") && lines[0].contains("\rstep 2/4 [=========>          ]"),
                lines[0]);
        assertEquals("eval at step 2: loss 2.0000 ppl 7.3891", lines[1]);
        assertTrue(lines[2].startsWith("\rstep 3/4 ") && lines[2].contains("loss 2.2500"), lines[2]);
    }

    @Test
    void formatsTheBarAndDurations() {
        assertEquals("[                    ]", ProgressBar.bar(0, 10));
        assertEquals("[=====>              ]", ProgressBar.bar(3, 10));
        assertEquals("[====================]", ProgressBar.bar(10, 10));
        assertEquals("1:23", ProgressBar.duration(83));
        assertEquals("0:00", ProgressBar.duration(0.2));
        assertEquals("1:01:05", ProgressBar.duration(3665));
    }

    @Test
    void lossHistoryRecordsStepsAndEvaluations() {
        LossHistory h = new LossHistory();
        assertTrue(Double.isNaN(h.lastLoss()));
        h.onBatchEnd(null, step(1, 2, 3.0));
        h.onBatchEnd(null, step(2, 2, 2.0));
        h.onEvaluateEnd(null, eval(1.5));
        assertEquals(2, h.steps().size());
        assertEquals(new LossHistory.Step(1, 3.0, 1e-3), h.steps().get(0));
        assertEquals(2.0, h.lastLoss());
        assertEquals(1, h.evals().size());
        assertEquals(2, h.lastEval().step());
        assertEquals(Math.exp(1.5), h.lastEval().ppl(), 1e-12);
    }
}
