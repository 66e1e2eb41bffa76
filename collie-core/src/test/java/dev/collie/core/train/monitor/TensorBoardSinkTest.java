package dev.collie.core.train.monitor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The hand-written TensorBoard event file against PyTorch's SummaryWriter, and read back record by record. */
class TensorBoardSinkTest {
    /** tools/reference/make_tensorboard_fixtures.py's SCALARS: step, wall time, tag, value. */
    private record Point(long step, double wall, String tag, double value) {
    }

    private static final List<Point> SCALARS = List.of(
            new Point(0, 1733500000.25, "train/loss", 2.5),
            new Point(1, 1733500001.5, "train/loss", 2.25),
            new Point(1, 1733500001.5, "train/lr", 0.001),
            new Point(1, 1733500001.5, "train/tgs", 1234.5678),
            new Point(1, 1733500001.5, "train/grad_norm", Double.NaN),
            new Point(300, 1733500300.125, "train/loss", 0.1),
            new Point(300, 1733500300.125, "train/memory_mib", 1.0 / 3.0),
            new Point(300, 1733500302.0, "eval/loss", -0.75),
            new Point(300, 1733500302.0, "eval/ppl", Math.exp(2.5)),
            new Point(123456789, 1733599999.875, "train/lr", 1e-7),
            new Point(123456789, 1733599999.875, "train/tokens", 3.0e38));

    /** The points as the monitor hands them over: consecutive ones of a step, time and group in one record. */
    private static List<Scalars> records() {
        List<Scalars> out = new ArrayList<>();
        Map<String, Double> values = new LinkedHashMap<>();
        for (int i = 0; i < SCALARS.size(); i++) {
            Point p = SCALARS.get(i);
            String[] tag = p.tag().split("/", 2);
            values.put(tag[1], p.value());
            Point next = i + 1 < SCALARS.size() ? SCALARS.get(i + 1) : null;
            if (next == null || next.step() != p.step() || next.wall() != p.wall()
                    || !next.tag().startsWith(tag[0] + "/")) {
                out.add(new Scalars(tag[0], p.step(), p.wall(), values));
                values.clear();
            }
        }
        return out;
    }

    private static Path golden() throws URISyntaxException {
        return Path.of(TensorBoardSinkTest.class.getResource("/monitor/torch.tfevents").toURI());
    }

    @Test
    void writesTheBytesOfPyTorchsSummaryWriter(@TempDir Path dir) throws Exception {
        List<byte[]> torch = EventFileReader.records(golden());
        EventFileReader.Event first = EventFileReader.decode(torch.get(0));
        Path mine = dir.resolve("events.out.tfevents.test");
        // the same wall time and writer name in the first event as the golden file's
        try (TensorBoardSink sink = new TensorBoardSink(mine, first::wallTime, first.writer())) {
            records().forEach(sink::write);
        }
        List<byte[]> ours = EventFileReader.records(mine);
        assertEquals(torch.size(), ours.size(), "records");
        for (int i = 0; i < torch.size(); i++) {
            assertArrayEquals(torch.get(i), ours.get(i), "record " + i + ": " + EventFileReader.decode(ours.get(i)));
        }
        assertArrayEquals(Files.readAllBytes(golden()), Files.readAllBytes(mine), "the whole file");
    }

    @Test
    void eachRecordCarriesItsCrcsAndTheTagsStepsAndValues(@TempDir Path dir) throws IOException {
        TensorBoardSink sink = new TensorBoardSink(dir);
        for (Scalars r : records()) {
            sink.write(r);
            sink.close();            // every record on a file opened again: appended, one file_version event
        }
        List<Path> files;
        try (var s = Files.list(dir)) {
            files = s.toList();
        }
        assertEquals(List.of(sink.path()), files);
        assertTrue(sink.path().getFileName().toString().startsWith("events.out.tfevents."), sink.path().toString());
        List<EventFileReader.Event> events = EventFileReader.events(sink.path());
        EventFileReader.Event version = events.get(0);
        assertEquals(EventRecords.FILE_VERSION, version.fileVersion());
        assertEquals(TensorBoardSink.WRITER, version.writer());
        assertNull(version.tag());
        assertTrue(Math.abs(version.wallTime() - System.currentTimeMillis() / 1000.0) < 600, "wall time now");
        assertEquals(SCALARS.size() + 1, events.size());
        for (int i = 0; i < SCALARS.size(); i++) {
            Point p = SCALARS.get(i);
            EventFileReader.Event e = events.get(i + 1);
            assertEquals(p.tag(), e.tag(), "tag " + i);
            assertEquals(p.step(), e.step(), "step " + i);
            assertEquals(p.wall(), e.wallTime(), "wall time " + i);
            assertEquals(Float.floatToIntBits((float) p.value()), Float.floatToIntBits(e.value()), "value " + i);
            assertNull(e.fileVersion());
        }
    }
}
