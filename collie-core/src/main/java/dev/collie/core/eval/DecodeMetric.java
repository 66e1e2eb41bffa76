package dev.collie.core.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.dist.Communicator;
import dev.collie.core.io.AtomicFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Keeps the decoded predictions (and their references, when the batch has them) to log them or write them as JSONL,
 * CoLLiE's {@code DecodeMetric}: one line per prediction, {@code {"prediction": "...", "references": ["..."]}}, in
 * the order seen. {@link #get} logs every line at INFO (when {@code log}) and replaces {@code output} with all of
 * them (when it is set), and reports {@code decoded}, the number of predictions. After {@link #gather} the lines of
 * every rank are on every rank, in rank order, and only rank 0 of the group logs and writes.
 */
public final class DecodeMetric implements Metric {
    private static final Logger LOG = LoggerFactory.getLogger(DecodeMetric.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path output;
    private final boolean log;
    private List<String> lines = new ArrayList<>();
    private boolean writer = true;

    /** Logs the predictions and writes none. */
    public DecodeMetric() {
        this(null, true);
    }

    /**
     * @param output the JSONL file {@link #get} writes, or null for none
     * @param log whether {@link #get} logs each prediction
     */
    public DecodeMetric(Path output, boolean log) {
        this.output = output;
        this.log = log;
    }

    @Override
    public void update(EvalBatch batch) {
        EvalBatch.Texts texts = batch.texts("decode");
        for (int i = 0; i < texts.predictions().size(); i++) {
            ObjectNode line = JSON.createObjectNode().put("prediction", texts.predictions().get(i));
            if (texts.references() != null) {
                texts.references().get(i).forEach(line.putArray("references")::add);
            }
            try {
                lines.add(JSON.writeValueAsString(line));
            } catch (JsonProcessingException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /** The JSONL lines kept so far (after {@link #gather}, every rank's). */
    public List<String> lines() {
        return List.copyOf(lines);
    }

    @Override
    public Map<String, Double> get() {
        if (writer) {
            if (log) {
                lines.forEach(l -> LOG.info("decoded: {}", l));
            }
            if (output != null) {
                StringBuilder text = new StringBuilder();
                lines.forEach(l -> text.append(l).append('\n'));
                AtomicFiles.writeString(output, text.toString());
            }
        }
        Map<String, Double> out = new LinkedHashMap<>();
        out.put("decoded", (double) lines.size());
        return out;
    }

    @Override
    public void reset() {
        lines = new ArrayList<>();
        writer = true;
    }

    @Override
    public void gather(Communicator group) {
        lines = new ArrayList<>(Collectives.gather(group, lines));
        writer = group.rank() == 0;
    }
}
