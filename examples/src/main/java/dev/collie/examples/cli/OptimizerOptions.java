package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.FusedBackwardOptimizer;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.optim.Sgd;
import dev.collie.optim.AdaLomo;
import dev.collie.optim.AdamW;
import dev.collie.optim.Adan;
import dev.collie.optim.Lion;
import dev.collie.optim.Lomo;
import dev.collie.optim.SophiaG;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Optimizer flags shared by {@code train} and {@code bench}: {@code --optimizer} is one of
 * {@code adamw | lion | adan | sophia | lomo | adalomo | sgd}, or the fully qualified name of a class that
 * implements {@link Optimizer} and has a public constructor taking the parameters
 * ({@code (Map<String, Parameter>)}); its hyper-parameters are its own business, the learning rate comes
 * from {@code --lr} at every step. {@code --lr} and {@code --weight-decay} default to the chosen
 * optimizer's defaults. A flag the chosen optimizer does not take is an error, not silently ignored.
 * {@code --clip-grad-norm} belongs to the enclosing command (the Trainer clips for step optimizers); LOMO
 * and AdaLomo take it themselves (see {@link #consumesClipGradNorm()}).
 */
final class OptimizerOptions {
    /** Built-in names, in the order help and errors list them. */
    static final List<String> NAMES = List.of("adamw", "lion", "adan", "sophia", "lomo", "adalomo", "sgd");

    @Spec(Spec.Target.MIXEE) CommandSpec mixee;

    /** The optimizer's name as given. */
    String name = "adamw";
    /** The learning rate: {@code --lr}, else the default of {@link #name}. */
    double lr = AdamW.DEFAULT_LR;
    private Double lrGiven;

    @Option(names = "--weight-decay", paramLabel = "WD",
            description = "weight decay (default: adamw 0.01, sophia 0.1, others 0)")
    Double weightDecay;
    @Option(names = "--betas", split = ",", paramLabel = "B",
            description = "adamw/lion/sophia: beta1,beta2 (0.9,0.999 / 0.9,0.99 / 0.965,0.99); adan: three"
                    + " 'keep' factors (0.98,0.92,0.99)")
    double[] betas;
    @Option(names = "--eps", split = ",", paramLabel = "E",
            description = "adamw/adan: one value (1e-8); adalomo: two, e.g. 1e-30,1e-3")
    double[] eps;
    @Option(names = "--clip-grad-value", paramLabel = "X", description = "lomo/adalomo: clamp each gradient element")
    Double clipGradValue;
    @Option(names = "--hessian-interval", paramLabel = "K", description = "sophia: steps between Hessian refreshes (10)")
    Integer hessianInterval;
    @Option(names = "--rho", paramLabel = "R", description = "sophia: clipping scale rho (0.04)")
    Double rho;
    @Option(names = "--max-grad-norm", paramLabel = "X", description = "adan: clip the global gradient norm first (0 = off)")
    Double maxGradNorm;
    @Option(names = "--no-prox", description = "adan: decay weights before the update instead of proximally after it")
    boolean noProx;

    @Option(names = "--optimizer", paramLabel = "NAME", defaultValue = "adamw",
            description = "adamw | lion | adan | sophia | lomo | adalomo | sgd | a class name (default adamw)")
    void setName(String value) {
        name = value;
        lr = lrGiven != null ? lrGiven : defaultLr(value);
    }

    @Option(names = "--lr", paramLabel = "LR",
            description = "learning rate (default: lion and sophia 1e-4, the others 1e-3)")
    void setLr(double value) {
        lrGiven = value;
        lr = value;
    }

    /** The default learning rate of a built-in optimizer (1e-3 for a class name). */
    static double defaultLr(String optimizer) {
        return switch (optimizer.toLowerCase(Locale.ROOT)) {
            case "lion" -> Lion.DEFAULT_LR;
            case "sophia" -> SophiaG.DEFAULT_LR;
            default -> 1e-3;
        };
    }

    /** Whether {@code --lr} was given. */
    boolean lrGiven() {
        return lrGiven != null;
    }

    /**
     * True when the chosen optimizer applies {@code --clip-grad-norm} itself (LOMO and AdaLomo, which never
     * hold all gradients at once); the command must then not pass it to the Trainer's config.
     */
    boolean consumesClipGradNorm() {
        String n = name.toLowerCase(Locale.ROOT);
        return n.equals("lomo") || n.equals("adalomo");
    }

    /** True for optimizers that update each parameter inside backward (LOMO, AdaLomo, or such a class). */
    boolean fusedBackward() {
        if (consumesClipGradNorm()) {
            return true;
        }
        try {
            return FusedBackwardOptimizer.class.isAssignableFrom(Class.forName(name));
        } catch (ClassNotFoundException | LinkageError e) {
            return false;
        }
    }

    /** The enclosing command's {@code --clip-grad-norm}, or null when it has none or it was not given. */
    private Double clipGradNorm() {
        if (mixee == null) {
            return null;
        }
        OptionSpec o = mixee.findOption("--clip-grad-norm");
        return o == null ? null : o.getValue();
    }

    /** Builds the optimizer over {@code params}. */
    Optimizer create(Map<String, Parameter> params) {
        String n = name.toLowerCase(Locale.ROOT);
        return switch (n) {
            case "adamw" -> {
                only("AdamW", "--betas", "--eps", "--weight-decay");
                double[] b = betas("AdamW", 2, 0.9, 0.999);
                yield new AdamW(params, b[0], b[1], eps("AdamW", 1, 1e-8)[0], wd(0.01));
            }
            case "lion" -> {
                only("Lion", "--betas", "--weight-decay");
                double[] b = betas("Lion", 2, 0.9, 0.99);
                yield new Lion(params, b[0], b[1], wd(0.0));
            }
            case "adan" -> {
                only("Adan", "--betas", "--eps", "--weight-decay", "--max-grad-norm", "--no-prox");
                double[] b = betas("Adan", 3, 0.98, 0.92, 0.99);
                double clip = maxGradNorm == null ? 0.0 : nonNegative("--max-grad-norm", maxGradNorm);
                yield new Adan(params, b[0], b[1], b[2], eps("Adan", 1, 1e-8)[0], wd(0.0), clip, noProx);
            }
            case "sophia" -> {
                only("SophiaG", "--betas", "--weight-decay", "--rho", "--hessian-interval");
                double[] b = betas("SophiaG", 2, 0.965, 0.99);
                int k = hessianInterval == null ? 10 : hessianInterval;
                if (k < 1) {
                    throw new CollieException("--hessian-interval must be >= 1, got " + k);
                }
                yield new SophiaG(params, b[0], b[1], rho == null ? 0.04 : nonNegative("--rho", rho), wd(0.1), 5120, k);
            }
            case "lomo" -> {
                only("LOMO", "--weight-decay", "--clip-grad-value");
                yield new Lomo(params, clip(clipGradNorm(), "--clip-grad-norm"), clip(clipGradValue, "--clip-grad-value"),
                        wd(0.0), null);
            }
            case "adalomo" -> {
                only("AdaLomo", "--eps", "--weight-decay", "--clip-grad-value");
                double[] e = eps("AdaLomo", 2, 1e-30, 1e-3);
                yield new AdaLomo(params, e[0], e[1], 1.0, -0.8, clip(clipGradNorm(), "--clip-grad-norm"),
                        clip(clipGradValue, "--clip-grad-value"), wd(0.0));
            }
            case "sgd" -> {
                only("SGD");
                yield new Sgd(params);
            }
            default -> {
                if (!name.contains(".")) {
                    throw new CollieException("--optimizer: unknown optimizer '" + name + "' (available: "
                            + String.join(", ", NAMES) + ", or the fully qualified name of an Optimizer class)");
                }
                only("a custom optimizer class (configure it in its constructor)");
                yield instantiate(name, params);
            }
        };
    }

    /**
     * Loads {@code className} and calls its public {@code (Map<String, Parameter>)} constructor.
     *
     * @throws CollieException when the class is missing, is not an {@link Optimizer}, has no such
     *                         constructor, or the constructor fails
     */
    static Optimizer instantiate(String className, Map<String, Parameter> params) {
        Class<?> c;
        try {
            c = Class.forName(className, true, Thread.currentThread().getContextClassLoader());
        } catch (ClassNotFoundException | LinkageError e) {
            throw new CollieException("--optimizer: class " + className + " not found on the class path (built-in"
                    + " optimizers: " + String.join(", ", NAMES) + ")");
        }
        if (!Optimizer.class.isAssignableFrom(c)) {
            throw new CollieException("--optimizer: class " + className + " does not implement "
                    + Optimizer.class.getName());
        }
        Constructor<?> ctor;
        try {
            ctor = c.getConstructor(Map.class);
        } catch (NoSuchMethodException e) {
            throw new CollieException("--optimizer: class " + className + " has no public constructor "
                    + c.getSimpleName() + "(Map<String, Parameter> params)");
        }
        try {
            return (Optimizer) ctor.newInstance(params);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            throw new CollieException("--optimizer: " + className + "(params) failed: " + cause, cause);
        } catch (ReflectiveOperationException e) {
            throw new CollieException("--optimizer: cannot construct " + className + ": " + e, e);
        }
    }

    /** Refuses any optimizer flag that was given but is not in {@code allowed}. */
    private void only(String optimizer, String... allowed) {
        List<String> given = new ArrayList<>();
        if (betas != null) {
            given.add("--betas");
        }
        if (eps != null) {
            given.add("--eps");
        }
        if (weightDecay != null) {
            given.add("--weight-decay");
        }
        if (clipGradValue != null) {
            given.add("--clip-grad-value");
        }
        if (hessianInterval != null) {
            given.add("--hessian-interval");
        }
        if (rho != null) {
            given.add("--rho");
        }
        if (maxGradNorm != null) {
            given.add("--max-grad-norm");
        }
        if (noProx) {
            given.add("--no-prox");
        }
        given.removeAll(List.of(allowed));
        if (!given.isEmpty()) {
            throw new CollieException(given.get(0) + " does not apply to " + optimizer + " (it takes "
                    + (allowed.length == 0 ? "no optimizer options but --lr" : String.join(", ", allowed)) + ")");
        }
    }

    private double[] betas(String optimizer, int count, double... defaults) {
        if (betas == null) {
            return defaults;
        }
        if (betas.length != count) {
            throw new CollieException("--betas: " + optimizer + " takes " + count + " values, got " + betas.length);
        }
        for (double b : betas) {
            if (!(b >= 0 && b < 1)) {
                throw new CollieException("--betas: each value must be in [0, 1), got " + b);
            }
        }
        return betas;
    }

    private double[] eps(String optimizer, int count, double... defaults) {
        if (eps == null) {
            return defaults;
        }
        if (eps.length != count) {
            throw new CollieException("--eps: " + optimizer + " takes " + (count == 1 ? "one value" : count + " values")
                    + ", got " + eps.length);
        }
        for (double e : eps) {
            nonNegative("--eps", e);
        }
        return eps;
    }

    private double wd(double fallback) {
        return weightDecay == null ? fallback : nonNegative("--weight-decay", weightDecay);
    }

    private static double clip(Double value, String flag) {
        return value == null ? 0.0 : nonNegative(flag, value);
    }

    private static double nonNegative(String flag, double v) {
        if (!(v >= 0)) {
            throw new CollieException(flag + " must be >= 0, got " + v);
        }
        return v;
    }
}
