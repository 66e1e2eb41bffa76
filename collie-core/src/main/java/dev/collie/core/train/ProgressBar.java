package dev.collie.core.train;

import java.io.PrintStream;
import java.util.Locale;
import java.util.Map;

/**
 * A console progress bar for the {@link Trainer}: on a terminal one line, rewritten in place with {@code \r}
 * after every step,
 * <pre>step 120/600 [=====>              ] loss 3.2104 lr 1.00e-03 tok/s 1234 eta 1:23</pre>
 * and, when the output is not a terminal (a log file, a pipe), the same text as a plain line every
 * {@code everyN} steps and at the last step. tok/s counts the time of training steps only; the ETA is the
 * wall time per step so far (evaluations included) times the steps left. Evaluation results get a line of
 * their own.
 */
public final class ProgressBar implements Callback {
    private static final int WIDTH = 20;

    private final PrintStream out;
    private final boolean terminal;
    private final int everyN;
    private long startNanos;
    private long firstStep = -1;
    private long lastStep;
    private long tokens;
    private double trainSeconds;
    private int lastLength;
    private boolean lineOpen;

    /** To standard output; in place when there is a console, else a line every 10 steps. */
    public ProgressBar() {
        this(System.out, System.console() != null, 10);
    }

    /**
     * @param out      where to print
     * @param terminal rewrite one line in place ({@code \r}) instead of printing lines
     * @param everyN   when not a terminal, print every this many steps (and the last one)
     */
    public ProgressBar(PrintStream out, boolean terminal, int everyN) {
        if (everyN < 1) {
            throw new IllegalArgumentException("everyN must be >= 1, got " + everyN);
        }
        this.out = out;
        this.terminal = terminal;
        this.everyN = everyN;
    }

    @Override
    public void onTrainBegin(Trainer trainer) {
        startNanos = System.nanoTime();
        firstStep = -1;
        tokens = 0;
        trainSeconds = 0;
    }

    @Override
    public void onBatchEnd(Trainer trainer, StepStats s) {
        if (firstStep < 0) {
            firstStep = s.step() - 1;
            if (startNanos == 0) {
                startNanos = System.nanoTime() - (long) (s.seconds() * 1e9);
            }
        }
        lastStep = s.step();
        tokens += s.tokens();
        trainSeconds += s.seconds();
        String line = format(s);
        if (terminal) {
            int pad = Math.max(0, lastLength - line.length());
            out.print("\r" + line + " ".repeat(pad));
            out.flush();
            lastLength = line.length();
            lineOpen = true;
        } else if (s.step() % everyN == 0 || s.step() == s.totalSteps()) {
            out.println(line);
        }
    }

    /** The progress text of step {@code s} (without {@code \r} or a line end). */
    String format(StepStats s) {
        double elapsed = Math.max(1e-9, (System.nanoTime() - startNanos) / 1e9);
        long done = Math.max(1, s.step() - firstStep);
        double perStep = elapsed / done;
        long remaining = Math.max(0, s.totalSteps() - s.step());
        return String.format(Locale.ROOT, "step %d/%d %s loss %.4f lr %.2e tok/s %.0f eta %s%s", s.step(),
                s.totalSteps(), bar(s.step(), s.totalSteps()), s.loss(), s.lr(), tokens / Math.max(1e-9, trainSeconds),
                duration(perStep * remaining), s.skipped() ? " (skipped: not finite)" : "");
    }

    @Override
    public void onEvaluateEnd(Trainer trainer, Map<String, Double> results) {
        StringBuilder sb = new StringBuilder("eval");
        if (lastStep > 0) {
            sb.append(" at step ").append(lastStep);
        }
        sb.append(':');
        results.forEach((k, v) -> sb.append(' ').append(k).append(' ').append(String.format(Locale.ROOT, "%.4f", v)));
        endLine();
        out.println(sb);
    }

    @Override
    public void onTrainEnd(Trainer trainer) {
        endLine();
        out.flush();
    }

    private void endLine() {
        if (lineOpen) {
            out.println();
            lineOpen = false;
            lastLength = 0;
        }
    }

    /** {@code [=====>    ]}: {@code step} of {@code total} as a bar of fixed width. */
    static String bar(long step, long total) {
        int filled = total <= 0 ? WIDTH : (int) Math.min(WIDTH, step * WIDTH / total);
        StringBuilder sb = new StringBuilder(WIDTH + 2).append('[');
        for (int i = 0; i < WIDTH; i++) {
            sb.append(i < filled - 1 || (i == filled - 1 && filled == WIDTH) ? '=' : i == filled - 1 ? '>' : ' ');
        }
        return sb.append(']').toString();
    }

    /** Seconds as {@code m:ss}, or {@code h:mm:ss} from an hour up. */
    static String duration(double seconds) {
        long s = Math.round(seconds);
        long h = s / 3600;
        long m = (s % 3600) / 60;
        long sec = s % 60;
        return h > 0 ? String.format(Locale.ROOT, "%d:%02d:%02d", h, m, sec)
                : String.format(Locale.ROOT, "%d:%02d", m, sec);
    }
}
