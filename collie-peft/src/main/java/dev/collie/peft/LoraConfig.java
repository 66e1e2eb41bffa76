package dev.collie.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.regex.Pattern;

/**
 * LoRA: {@code y = W x + (alpha / r) · B A dropout(x)} on every targeted linear layer, with {@code A} Kaiming-uniform
 * ({@code a = √5}) and {@code B} zero at the start, as peft initialises them. Targets are matched as peft does:
 * a list of names matches a module whose dotted name equals one of them or ends with {@code "." + name}; a regular
 * expression must match the whole dotted name ({@code .*mlp.*}). {@code seed} seeds the dropout masks (collie only;
 * not part of peft's file).
 */
public record LoraConfig(int r, double alpha, double dropout, List<String> targets, String targetRegex,
                         boolean useRslora, long seed, String baseModelNameOrPath) implements PeftConfig {
    public LoraConfig {
        if (r <= 0) {
            throw new IllegalArgumentException("LoRA rank r must be positive, got " + r);
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("LoRA dropout must be in [0, 1), got " + dropout);
        }
        if ((targets == null || targets.isEmpty()) == (targetRegex == null)) {
            throw new IllegalArgumentException("give LoRA target module names or one regular expression (exactly one)");
        }
        targets = targets == null ? null : List.copyOf(targets);
        if (targetRegex != null) {
            Pattern.compile(targetRegex);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    @Override
    public PeftType type() {
        return PeftType.LORA;
    }

    /** The factor of the adapter's output: {@code alpha / r}, or {@code alpha / √r} with rank-stabilised LoRA. */
    public double scaling() {
        return useRslora ? alpha / Math.sqrt(r) : alpha / r;
    }

    /** Whether the module with dotted name {@code name} is a target (peft's rule). */
    public boolean matches(String name) {
        if (targetRegex != null) {
            return Pattern.compile(targetRegex).matcher(name).matches();
        }
        for (String t : targets) {
            if (name.equals(t) || name.endsWith("." + t)) {
                return true;
            }
        }
        return false;
    }

    @Override
    public LoraConfig withBaseModel(String nameOrPath) {
        return new LoraConfig(r, alpha, dropout, targets, targetRegex, useRslora, seed, nameOrPath);
    }

    @Override
    public ObjectNode toJson(BaseModelShape shape) {
        ObjectNode n = AdapterJson.template(PeftType.LORA);
        n.put("base_model_name_or_path", baseModelNameOrPath);
        n.put("r", r);
        AdapterJson.putNumber(n, "lora_alpha", alpha);
        n.put("lora_dropout", dropout);
        n.put("use_rslora", useRslora);
        if (targetRegex != null) {
            n.put("target_modules", targetRegex);
        } else {
            ArrayNode a = n.putArray("target_modules");
            List<String> sorted = new ArrayList<>(targets);
            Collections.sort(sorted);
            sorted.forEach(a::add);
        }
        return n;
    }

    static LoraConfig fromJson(JsonNode j, String where) {
        requireDefault(j, where, "use_dora", false);
        requireDefault(j, where, "fan_in_fan_out", false);
        requireDefault(j, where, "lora_bias", false);
        String bias = AdapterJson.textField(j, "bias");
        if (bias != null && !bias.equals("none")) {
            throw new CollieException(where + ": bias \"" + bias + "\" is not supported (only \"none\")");
        }
        for (String f : new String[] {"layers_to_transform", "layers_pattern", "modules_to_save", "target_parameters",
            "trainable_token_indices", "layer_replication", "exclude_modules"}) {
            JsonNode v = j.get(f);
            if (v != null && !v.isNull() && !(v.isContainerNode() && v.isEmpty())) {
                throw new CollieException(where + ": " + f + " is not supported by collie's LoRA");
            }
        }
        for (String f : new String[] {"rank_pattern", "alpha_pattern"}) {
            JsonNode v = j.get(f);
            if (v != null && !v.isNull() && !v.isEmpty()) {
                throw new CollieException(where + ": " + f + " is not supported by collie's LoRA");
            }
        }
        int r = AdapterJson.required(j, "r", where);
        JsonNode t = j.get("target_modules");
        List<String> targets = null;
        String regex = null;
        if (t == null || t.isNull()) {
            throw new CollieException(where + ": target_modules is missing");
        } else if (t.isTextual()) {
            regex = t.asText();
        } else {
            targets = new ArrayList<>();
            for (JsonNode x : t) {
                targets.add(x.asText());
            }
            Collections.sort(targets);
        }
        return new LoraConfig(r, AdapterJson.doubleField(j, "lora_alpha", 8),
                AdapterJson.doubleField(j, "lora_dropout", 0), targets, regex,
                AdapterJson.boolField(j, "use_rslora", false), 0,
                AdapterJson.textField(j, "base_model_name_or_path"));
    }

    private static void requireDefault(JsonNode j, String where, String field, boolean dflt) {
        if (AdapterJson.boolField(j, field, dflt) != dflt) {
            throw new CollieException(where + ": " + field + " = " + !dflt + " is not supported by collie's LoRA");
        }
    }

    /** Builder with peft's defaults: r 8, alpha 8, dropout 0, no targets (one must be given). */
    public static final class Builder {
        private int r = 8;
        private double alpha = 8;
        private double dropout;
        private List<String> targets;
        private String targetRegex;
        private boolean useRslora;
        private long seed;
        private String base;

        public Builder r(int r) { this.r = r; return this; }
        public Builder alpha(double alpha) { this.alpha = alpha; return this; }
        public Builder dropout(double p) { this.dropout = p; return this; }
        /** Target modules by name ({@code q_proj} matches {@code model.layers.0.self_attn.q_proj}). */
        public Builder targets(String... names) { this.targets = List.of(names); this.targetRegex = null; return this; }
        public Builder targets(List<String> names) {
            this.targets = List.copyOf(names);
            this.targetRegex = null;
            return this;
        }
        /** Target modules whose whole dotted name matches {@code regex}. */
        public Builder targetRegex(String regex) { this.targetRegex = regex; this.targets = null; return this; }
        public Builder useRslora(boolean on) { this.useRslora = on; return this; }
        /** Seed of the dropout masks. */
        public Builder seed(long seed) { this.seed = seed; return this; }
        public Builder baseModel(String nameOrPath) { this.base = nameOrPath; return this; }

        public LoraConfig build() {
            return new LoraConfig(r, alpha, dropout, targets, targetRegex, useRslora, seed, base);
        }
    }
}
