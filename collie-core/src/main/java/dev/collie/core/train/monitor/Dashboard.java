package dev.collie.core.train.monitor;

import dev.collie.core.CollieException;
import dev.collie.core.io.AtomicFiles;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Color;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The run on one PNG, four panels drawn with XChart: training loss, an evaluation metric, learning rate and TGS,
 * each against the step. It keeps only those figures of the records {@link #add added} to it (four numbers a
 * logged step), and draws at most 2000 points a line (means of consecutive steps beyond that).
 * XChart is an optional dependency of collie-core: {@link #requireXChart()} says so when it is missing.
 */
public final class Dashboard {
    static final int MAX_POINTS = 2000;
    private static final int PANEL_WIDTH = 640;
    private static final int PANEL_HEIGHT = 400;

    private final String title;
    private final String evalMetric;
    private final Series loss = new Series();
    private final Series lr = new Series();
    private final Series tgs = new Series();
    private final Series eval = new Series();
    private String evalDrawn;

    /**
     * An empty dashboard titled {@code title}, whose evaluation panel shows {@code evalMetric} (null: {@code loss}
     * where the evaluation has it, else its first metric).
     */
    public Dashboard(String title, String evalMetric) {
        this.title = title;
        this.evalMetric = evalMetric;
    }

    /** Takes what it draws from {@code r}: a training step's loss, lr and TGS, or an evaluation's metric. */
    public void add(Scalars r) {
        Map<String, Double> v = r.values();
        if (r.group().equals("train")) {
            loss.add(r.step(), v.getOrDefault("loss", Double.NaN));
            lr.add(r.step(), v.getOrDefault("lr", Double.NaN));
            tgs.add(r.step(), v.getOrDefault("tgs", Double.NaN));
        } else if (r.group().equals("eval") && !v.isEmpty()) {
            if (evalDrawn == null) {
                evalDrawn = evalMetric != null ? evalMetric
                        : v.containsKey("loss") ? "loss" : v.keySet().iterator().next();
            }
            if (v.containsKey(evalDrawn)) {
                eval.add(r.step(), v.get(evalDrawn));
            }
        }
    }

    /** Logged training steps so far. */
    public int steps() {
        return loss.size;
    }

    /** Refuses, naming the library, when XChart is not on the class path. */
    public static void requireXChart() {
        try {
            Class.forName("org.knowm.xchart.XYChart", false, Dashboard.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            throw new CollieException("the monitor's dashboard is drawn with XChart, which is not on the class path:"
                    + " add org.knowm.xchart:xchart to the dependencies (collie-core declares it optional)");
        }
    }

    /** Draws the four panels into {@code png}, replacing it whole (a reader never sees half a picture). */
    public void write(Path png) {
        requireXChart();
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
        List<XYChart> panels = List.of(
                panel(title + ": training loss", "loss", loss, new Color(20, 70, 160)),
                panel(evalDrawn == null ? "evaluation: none yet" : "evaluation: " + evalDrawn, evalDrawn, eval,
                        new Color(210, 60, 40)),
                panel("learning rate", "lr", lr, new Color(40, 140, 60)),
                panel("TGS (tokens / device / s)", "tgs", tgs, new Color(130, 60, 170)));
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try {
            BitmapEncoder.saveBitmap(panels, 2, 2, buf, BitmapEncoder.BitmapFormat.PNG);
        } catch (IOException e) {
            throw new CollieException(png + ": cannot encode the dashboard: " + e, e);
        }
        AtomicFiles.write(png, ch -> AtomicFiles.writeFully(ch, ByteBuffer.wrap(buf.toByteArray())));
    }

    private static XYChart panel(String name, String y, Series s, Color color) {
        double[][] xy = s.drawn();
        // XChart 3.8.8 takes a series whose consecutive values all differ by less than 1e-4 (absolute) for "equally
        // spaced" and puts a tick label at every few data values, which overlap: a learning rate's values are shown
        // in units that make them differ by more, and the steps (exactly equally spaced) get one nudge of 1e-3 on
        // the first, invisible at any width, so both axes get round ticks
        double scale = unitScale(xy[1]);
        String title = y == null ? "" : scale == 1 ? y : y + " (\u00d7" + formatPower(-Math.log10(scale)) + ")";
        XYChart chart = new XYChartBuilder().width(PANEL_WIDTH).height(PANEL_HEIGHT).title(name).xAxisTitle("step")
                .yAxisTitle(title).build();
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setLegendVisible(false);
        chart.getStyler().setXAxisDecimalPattern("#");
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        if (xy[0].length == 0) {
            return chart;                       // an empty frame: nothing logged (yet)
        }
        for (int i = 0; i < xy[1].length; i++) {
            xy[1][i] *= scale;
        }
        if (xy[0].length > 2) {
            xy[0][0] -= 1e-3;
        }
        XYSeries line = chart.addSeries(name, xy[0], xy[1]);
        line.setLineColor(color);
        line.setLineWidth(1.5f);
        line.setMarker(xy[0].length <= 50 ? SeriesMarkers.CIRCLE : SeriesMarkers.NONE);
        line.setMarkerColor(color);
        return chart;
    }

    /** 10^k that brings values all below 0.1 in magnitude to [1, 10) at most (1 for larger values or none). */
    static double unitScale(double[] values) {
        double max = 0;
        for (double v : values) {
            max = Math.max(max, Math.abs(v));
        }
        return max == 0 || max >= 0.1 ? 1 : Math.pow(10, -Math.floor(Math.log10(max)));
    }

    private static String formatPower(double exponent) {
        return "1e" + Math.round(exponent);
    }

    /** A growing (step, value) line, non-finite values left out when drawn. */
    private static final class Series {
        private double[] x = new double[64];
        private double[] y = new double[64];
        private int size;

        void add(long step, double value) {
            if (size == x.length) {
                x = Arrays.copyOf(x, 2 * size);
                y = Arrays.copyOf(y, 2 * size);
            }
            x[size] = step;
            y[size] = value;
            size++;
        }

        /** The finite points, as at most {@link #MAX_POINTS} means of consecutive ones. */
        double[][] drawn() {
            List<double[]> finite = new ArrayList<>();
            for (int i = 0; i < size; i++) {
                if (Double.isFinite(y[i])) {
                    finite.add(new double[] {x[i], y[i]});
                }
            }
            int n = finite.size();
            int per = Math.max(1, (n + MAX_POINTS - 1) / MAX_POINTS);
            int m = (n + per - 1) / per;
            double[][] out = new double[2][m];
            for (int b = 0; b < m; b++) {
                int from = b * per;
                int to = Math.min(n, from + per);
                for (int i = from; i < to; i++) {
                    out[0][b] += finite.get(i)[0] / (to - from);
                    out[1][b] += finite.get(i)[1] / (to - from);
                }
            }
            return out;
        }
    }
}
