package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import jdk.jfr.Recording;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A Java Flight Recorder recording of a benchmark's timed steps only (warm-up and model building left out): execution
 * and native-method samples every millisecond, which {@code tools/bench/step_profile.py} turns into a per-op table.
 */
final class StepRecording {
    private final Recording recording;
    private final Path file;

    private StepRecording(Recording recording, Path file) {
        this.recording = recording;
        this.file = file;
    }

    static StepRecording start(Path file) {
        Recording r = new Recording();
        r.enable("jdk.ExecutionSample").withPeriod(Duration.ofMillis(1));
        r.enable("jdk.NativeMethodSample").withPeriod(Duration.ofMillis(1));
        r.setToDisk(true);
        r.start();
        return new StepRecording(r, file);
    }

    void stop() {
        try {
            recording.stop();
            recording.dump(file);
        } catch (IOException e) {
            throw new CollieException("--jfr: cannot write " + file + ": " + e.getMessage(), e);
        } finally {
            recording.close();
        }
    }
}
