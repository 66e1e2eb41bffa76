package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.train.LossHistory;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Color;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Draws the loss curve of a training run as a PNG with XChart: the training loss of every step (a thin line),
 * its trailing mean over a window of 2% of the steps (a thick line) and the evaluation loss (points joined by a
 * dashed line).
 */
public final class LossCurve {
    private LossCurve() {
    }

    /** Writes the curve recorded in {@code history} to {@code png}, creating its directory. */
    public static void write(LossHistory history, Path png, String title) {
        List<LossHistory.Step> steps = history.steps();
        if (steps.isEmpty()) {
            throw new CollieException("no training step was recorded, so there is no loss curve to draw");
        }
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
        XYChart chart = new XYChartBuilder().width(900).height(540).title(title).xAxisTitle("step")
                .yAxisTitle("loss").build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setXAxisMin(0.0);
        chart.getStyler().setXAxisDecimalPattern("#");
        chart.getStyler().setXAxisTickMarkSpacingHint(90);
        int n = steps.size();
        double[] x = new double[n];
        double[] y = new double[n];
        double[] smooth = new double[n];
        int window = Math.max(2, n / 50);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            x[i] = steps.get(i).step();
            y[i] = steps.get(i).loss();
            sum += y[i];
            if (i >= window) {
                sum -= y[i - window];
            }
            smooth[i] = sum / Math.min(i + 1, window);
        }
        XYSeries raw = chart.addSeries("train loss", x, y);
        raw.setMarker(SeriesMarkers.NONE);
        raw.setLineColor(new Color(120, 160, 220));
        raw.setLineWidth(1f);
        if (n >= 10) {
            XYSeries avg = chart.addSeries("train loss (mean of " + window + " steps)", x, smooth);
            avg.setMarker(SeriesMarkers.NONE);
            avg.setLineColor(new Color(20, 70, 160));
            avg.setLineWidth(2.5f);
        }
        List<LossHistory.Eval> evals = history.evals();
        if (!evals.isEmpty()) {
            double[] ex = new double[evals.size()];
            double[] ey = new double[evals.size()];
            for (int i = 0; i < ex.length; i++) {
                ex[i] = evals.get(i).step();
                ey[i] = evals.get(i).loss();
            }
            XYSeries ev = chart.addSeries("eval loss", ex, ey);
            ev.setMarker(SeriesMarkers.CIRCLE);
            ev.setMarkerColor(new Color(210, 60, 40));
            ev.setLineColor(new Color(210, 60, 40));
            ev.setLineStyle(SeriesLines.DASH_DASH);
        }
        try {
            Path dir = png.toAbsolutePath().getParent();
            if (dir != null) {
                Files.createDirectories(dir);
            }
            try (OutputStream out = Files.newOutputStream(png)) {
                BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG);
            }
        } catch (IOException e) {
            throw new CollieException(png + ": cannot write the loss curve: " + e.getMessage(), e);
        }
    }
}
