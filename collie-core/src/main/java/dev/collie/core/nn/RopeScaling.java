package dev.collie.core.nn;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.io.HfConfig;

import java.util.Set;
import java.util.TreeSet;

/**
 * Rotary position embedding parameters as Hugging Face configs give them, and the inverse frequencies they make
 * ({@link #invFreq}), which {@link RotaryEmbedding} turns into its tables. Configs come in two layouts:
 * transformers 4.x ({@code rope_theta} and {@code rope_scaling} at the top level) and 5.x ({@code rope_parameters}
 * holding {@code rope_type}, {@code rope_theta} and the scaling fields); {@link #read} takes either, {@link #write}
 * writes both, so that either version loads the file.
 *
 * @param type one of {@link #TYPES}
 * @param theta the base wavelength ({@code rope_theta})
 * @param factor the scaling factor (1 for "default")
 * @param lowFreqFactor llama3 only (else 0)
 * @param highFreqFactor llama3 only (else 0)
 * @param originalMaxPositionEmbeddings llama3 only: the pre-training context length (else 0)
 */
public record RopeScaling(String type, double theta, double factor, double lowFreqFactor, double highFreqFactor,
                          int originalMaxPositionEmbeddings) {
    /** The rope types understood: HF's default, linear (position interpolation), dynamic NTK and Llama 3.1. */
    public static final Set<String> TYPES = Set.of("default", "linear", "dynamic", "llama3");

    /** Plain RoPE with base {@code theta}. */
    public static RopeScaling standard(double theta) {
        return new RopeScaling("default", theta, 1.0, 0, 0, 0);
    }

    /** Linear scaling (position interpolation): frequencies divided by {@code factor}. */
    public static RopeScaling linear(double theta, double factor) {
        return new RopeScaling("linear", theta, factor, 0, 0, 0);
    }

    /** Dynamic NTK scaling: the base grows once the sequence is longer than max_position_embeddings. */
    public static RopeScaling dynamic(double theta, double factor) {
        return new RopeScaling("dynamic", theta, factor, 0, 0, 0);
    }

    /** Llama 3.1 scaling. */
    public static RopeScaling llama3(double theta, double factor, double lowFreqFactor, double highFreqFactor,
                                     int originalMaxPositionEmbeddings) {
        return new RopeScaling("llama3", theta, factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings);
    }

    /**
     * Reads either layout of {@code config} and validates it (errors name the file and the field);
     * {@code maxPositionEmbeddings} is llama3's default {@code original_max_position_embeddings}.
     */
    public static RopeScaling read(HfConfig config, int maxPositionEmbeddings) {
        double topTheta = config.dbl("rope_theta", 10000.0);
        HfConfig p = config.section("rope_parameters");
        String field = p != null ? "rope_parameters" : "rope_scaling";
        if (p == null) {
            p = config.section("rope_scaling");
        }
        RopeScaling r;
        if (p == null) {
            r = standard(topTheta);
        } else {
            Double t = field.equals("rope_parameters") ? p.optDbl("rope_theta") : null;
            double theta = t != null ? t : topTheta;
            String named = p.string("rope_type", null);
            String type = named != null ? named : p.string("type", "default");   // 4.x wrote "type"
            r = switch (type) {
                case "default" -> standard(theta);
                case "linear" -> linear(theta, p.requiredDbl("factor"));
                case "dynamic" -> dynamic(theta, p.requiredDbl("factor"));
                case "llama3" -> llama3(theta, p.requiredDbl("factor"), p.requiredDbl("low_freq_factor"),
                        p.requiredDbl("high_freq_factor"), p.intOr("original_max_position_embeddings", maxPositionEmbeddings));
                default -> new RopeScaling(type, theta, 1.0, 0, 0, 0);      // refused, naming the field, below
            };
        }
        try {
            r.validate(field);
        } catch (CollieException e) {
            throw config.bad(e.getMessage());
        }
        return r;
    }

    /**
     * Writes both layouts into {@code config}: {@code rope_parameters} (5.x), then the top-level {@code rope_scaling}
     * and {@code rope_theta} (4.x); call it where those keys sort among the others.
     */
    public void write(ObjectNode config) {
        ObjectNode rp = config.putObject("rope_parameters");
        putScaling(rp);
        rp.put("rope_theta", theta);
        rp.put("rope_type", type);
        if (type.equals("default")) {
            config.putNull("rope_scaling");
        } else {
            ObjectNode rs = config.putObject("rope_scaling");
            putScaling(rs);
            rs.put("rope_type", type);
        }
        config.put("rope_theta", theta);
    }

    private void putScaling(ObjectNode n) {
        if (type.equals("default")) {
            return;
        }
        n.put("factor", factor);
        if (type.equals("llama3")) {
            n.put("high_freq_factor", highFreqFactor);
            n.put("low_freq_factor", lowFreqFactor);
            n.put("original_max_position_embeddings", originalMaxPositionEmbeddings);
        }
    }

    /** The same scaling with another base. */
    public RopeScaling withTheta(double newTheta) {
        return new RopeScaling(type, newTheta, factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings);
    }

    /**
     * Checks the values; the message names {@code field} (the config's {@code rope_parameters} or {@code
     * rope_scaling}) and its entries.
     */
    public void validate(String field) {
        if (!TYPES.contains(type)) {
            throw new CollieException(field + ".rope_type \"" + type + "\" is not supported (supported: "
                    + String.join(", ", new TreeSet<>(TYPES)) + ")");
        }
        if (!(theta > 0) || Double.isInfinite(theta)) {
            String thetaField = field.equals("rope_parameters") ? "rope_parameters.rope_theta" : "rope_theta";
            throw new CollieException(thetaField + " (" + theta + ") must be positive");
        }
        if (!type.equals("default") && (!(factor > 0) || Double.isInfinite(factor))) {
            throw new CollieException(field + ".factor (" + factor + ") must be positive for rope_type \"" + type + "\"");
        }
        if (type.equals("llama3")) {
            if (!(lowFreqFactor > 0)) {
                throw new CollieException(field + ".low_freq_factor (" + lowFreqFactor + ") must be positive");
            }
            if (!(highFreqFactor > lowFreqFactor)) {
                throw new CollieException(field + ".high_freq_factor (" + highFreqFactor
                        + ") must be greater than low_freq_factor (" + lowFreqFactor + ")");
            }
            if (originalMaxPositionEmbeddings <= 0) {
                throw new CollieException(field + ".original_max_position_embeddings ("
                        + originalMaxPositionEmbeddings + ") must be positive");
            }
        }
    }

    /**
     * The inverse frequencies ({@code headDim / 2} values) for sequences of length {@code seqLen}, as transformers
     * computes them, in double precision (transformers: float32, so they agree to about 1e-7 relative). Only
     * "dynamic" depends on {@code seqLen} (its base grows once it exceeds {@code maxPositionEmbeddings}).
     * <ul>
     *   <li>default: {@code 1 / theta^(2i/d)}</li>
     *   <li>linear: default divided by {@code factor}</li>
     *   <li>dynamic: default with {@code theta * ((factor * L / max_pos) - (factor - 1))^(d / (d - 2))},
     *       {@code L = max(seqLen, max_pos)}</li>
     *   <li>llama3: wavelengths above {@code orig_max / low_freq_factor} are divided by {@code factor}, those
     *       below {@code orig_max / high_freq_factor} kept, and those between interpolated smoothly</li>
     * </ul>
     */
    public double[] invFreq(int headDim, int maxPositionEmbeddings, long seqLen) {
        int d = headDim;
        double base = theta;
        if (type.equals("dynamic")) {
            long len = Math.max(seqLen, maxPositionEmbeddings);
            base = base * Math.pow((factor * len / maxPositionEmbeddings) - (factor - 1), (double) d / (d - 2));
        }
        double[] inv = new double[d / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1.0 / Math.pow(base, (2.0 * i) / d);
        }
        if (type.equals("linear")) {
            for (int i = 0; i < inv.length; i++) {
                inv[i] /= factor;
            }
        } else if (type.equals("llama3")) {
            double lowFreqWavelen = originalMaxPositionEmbeddings / lowFreqFactor;
            double highFreqWavelen = originalMaxPositionEmbeddings / highFreqFactor;
            for (int i = 0; i < inv.length; i++) {
                double wavelen = 2 * Math.PI / inv[i];
                if (wavelen > lowFreqWavelen) {
                    inv[i] = inv[i] / factor;
                } else if (wavelen >= highFreqWavelen) {
                    double smooth = (originalMaxPositionEmbeddings / wavelen - lowFreqFactor)
                            / (highFreqFactor - lowFreqFactor);
                    inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
                }
            }
        }
        return inv;
    }
}
