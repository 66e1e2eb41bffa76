package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.train.monitor.Dashboard;
import dev.collie.core.train.monitor.JsonlSink;
import dev.collie.core.train.monitor.MonitorConfig;
import dev.collie.core.train.monitor.Scalars;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code collie dashboard}: the monitor's PNG dashboard drawn on demand from a run's {@code metrics.jsonl}, while
 * the run goes on or after it (a resumed run's earlier steps included).
 */
@Command(name = "dashboard", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Draw the training dashboard (loss, evaluation, lr, TGS) from a monitor directory's"
                + " metrics.jsonl (collie train --monitor jsonl --monitor-dir DIR), e.g. while the run goes on."})
final class DashboardCommand implements Callable<Integer> {
    @Option(names = "--monitor-dir", paramLabel = "DIR", required = true, description = "the run's --monitor-dir")
    Path dir;
    @Option(names = "--out", paramLabel = "FILE", description = "the PNG to write (default: DIR/dashboard.png)")
    Path out;
    @Option(names = "--eval-metric", paramLabel = "NAME",
            description = "the evaluation metric to draw (default: loss, else the evaluation's first)")
    String evalMetric;

    @Override
    public Integer call() {
        Path jsonl = dir.resolve(JsonlSink.FILE);
        if (!Files.isRegularFile(jsonl)) {
            throw new CollieException("--monitor-dir " + dir + " has no " + JsonlSink.FILE + ": the dashboard is drawn"
                    + " from it (train with --monitor jsonl)");
        }
        Path png = out != null ? out : dir.resolve(MonitorConfig.DASHBOARD);
        CliSupport.outputFile("--out", png);
        List<Scalars> records = JsonlSink.read(jsonl);
        Dashboard d = new Dashboard("collie train", evalMetric);
        records.forEach(d::add);
        if (d.steps() == 0) {
            throw new CollieException(jsonl + " has no training step yet");
        }
        d.write(png);
        System.out.println("dashboard of " + d.steps() + " logged steps: " + png);
        return 0;
    }
}
