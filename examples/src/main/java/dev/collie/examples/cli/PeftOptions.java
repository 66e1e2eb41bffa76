package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Parameter;
import dev.collie.core.train.LanguageModel;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.peft.LoraConfig;
import dev.collie.peft.Peft;
import dev.collie.peft.PeftConfig;
import dev.collie.peft.PeftModel;
import dev.collie.peft.PeftType;
import dev.collie.peft.PrefixTuningConfig;
import dev.collie.peft.PromptEncoderConfig;
import dev.collie.peft.PromptTuningConfig;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code train}'s PEFT flags (a picocli mixin): a new LoRA adapter ({@code --lora-r}),
 * prefix ({@code --prefix-tokens}), prompt ({@code --prompt-tokens}) or P-tuning
 * ({@code --prompt-tokens} with {@code --prompt-encoder-hidden}), or an existing adapter directory
 * ({@code --adapter}, Hugging Face peft's format). {@code --merge} (LoRA) folds the adapter into the base weights:
 * {@code train} then saves a full Hugging Face model instead of the adapter directory.
 */
final class PeftOptions {
    @Option(names = "--lora-r", paramLabel = "R", description = "train a LoRA adapter of rank R (base weights frozen)")
    Integer loraR;
    @Option(names = "--lora-alpha", paramLabel = "A",
            description = "LoRA alpha; the update is scaled by A/R (default 8)")
    Double loraAlpha;
    @Option(names = "--lora-dropout", paramLabel = "P",
            description = "dropout on the LoRA input in training (default 0)")
    Double loraDropout;
    @Option(names = "--lora-targets", paramLabel = "NAMES",
            description = "modules to adapt: names separated by commas (default: the family's, as peft picks them:"
                    + " q_proj,v_proj for LLaMA, Qwen and Mistral, wqkv for InternLM2, query_key_value for ChatGLM),"
                    + " or one regular"
                    + " expression matched against the whole module name, e.g. '.*mlp.*'")
    String loraTargets;
    @Option(names = "--prefix-tokens", paramLabel = "N", description = "train N key/value prefix positions per layer")
    Integer prefixTokens;
    @Option(names = "--prefix-projection", paramLabel = "H",
            description = "prefix tuning through peft's reparameterisation MLP of width H")
    Integer prefixProjection;
    @Option(names = "--prompt-tokens", paramLabel = "N", description = "train N virtual prompt tokens (prompt tuning)")
    Integer promptTokens;
    @Option(names = "--prompt-encoder-hidden", paramLabel = "H",
            description = "with --prompt-tokens: P-tuning, the prompt from an MLP of width H")
    Integer promptEncoderHidden;
    @Mixin AdapterOptions existing;

    /** Whether any PEFT flag was given. */
    boolean active() {
        return loraR != null || prefixTokens != null || promptTokens != null || existing.adapter != null;
    }

    /** The configuration the flags describe, or null for an --adapter directory or no PEFT. */
    PeftConfig config(String baseModel, List<String> defaultTargets) {
        int methods = (loraR != null ? 1 : 0) + (prefixTokens != null ? 1 : 0) + (promptTokens != null ? 1 : 0)
                + (existing.adapter != null ? 1 : 0);
        if (methods > 1) {
            throw new CollieException("give one of --lora-r, --prefix-tokens, --prompt-tokens and --adapter");
        }
        if ((loraAlpha != null || loraDropout != null || loraTargets != null) && loraR == null) {
            throw new CollieException("--lora-alpha, --lora-dropout and --lora-targets need --lora-r");
        }
        if (prefixProjection != null && prefixTokens == null) {
            throw new CollieException("--prefix-projection needs --prefix-tokens");
        }
        if (promptEncoderHidden != null && promptTokens == null) {
            throw new CollieException("--prompt-encoder-hidden needs --prompt-tokens");
        }
        if (loraR != null) {
            LoraConfig.Builder b = LoraConfig.builder().r(loraR).baseModel(baseModel);
            if (loraAlpha != null) {
                b.alpha(loraAlpha);
            }
            if (loraDropout != null) {
                b.dropout(loraDropout);
            }
            String t = loraTargets == null ? String.join(",", defaultTargets) : loraTargets.trim();
            if (t.matches(".*[\\\\.*+?()\\[\\]{}|^$].*")) {
                b.targetRegex(t);
            } else {
                List<String> names = new ArrayList<>();
                for (String s : t.split("\\s*,\\s*")) {
                    if (!s.isEmpty()) {
                        names.add(s);
                    }
                }
                b.targets(names);
            }
            try {
                return b.build();
            } catch (IllegalArgumentException e) {
                throw new CollieException("LoRA: " + e.getMessage());
            }
        }
        try {
            if (prefixTokens != null) {
                PrefixTuningConfig c = prefixProjection != null
                        ? PrefixTuningConfig.withProjection(prefixTokens, prefixProjection)
                        : PrefixTuningConfig.of(prefixTokens);
                return c.withBaseModel(baseModel);
            }
            if (promptTokens != null) {
                return promptEncoderHidden != null
                        ? PromptEncoderConfig.of(promptTokens, promptEncoderHidden).withBaseModel(baseModel)
                        : PromptTuningConfig.of(promptTokens).withBaseModel(baseModel);
            }
        } catch (IllegalArgumentException e) {
            throw new CollieException(e.getMessage());
        }
        return null;
    }

    /**
     * The model to train: {@code net} itself without PEFT flags, else {@code net} wrapped with a new adapter or the one
     * in {@code --adapter} (base frozen); peft's "trainable params: ..." line is printed.
     */
    LanguageModel apply(DecoderForCausalLM net, Path baseModel) {
        PeftConfig cfg = config(baseModel == null ? null : baseModel.toString(),
                net.config().family().loraTargets());
        if (existing.merge && cfg != null && cfg.type() != PeftType.LORA) {
            throw new CollieException("--merge applies to LoRA only (" + cfg.type() + " adds virtual tokens)");
        }
        if (!active()) {
            if (existing.merge) {
                throw new CollieException("--merge needs a LoRA adapter: --lora-r R or --adapter DIR");
            }
            return net;
        }
        PeftModel m = cfg != null ? Peft.wrap(net, cfg) : Peft.loadAdapter(net, existing.adapter);
        if (existing.merge && m.config().type() != PeftType.LORA) {
            throw new CollieException("--merge applies to LoRA adapters only; " + existing.adapter + " holds "
                    + m.config().type());
        }
        System.out.println(Peft.parameterReport(m.module()));
        return m;
    }

    /** What the optimizer gets: the trainable parameters by name (only the adapter's for a PEFT model). */
    Map<String, Parameter> trainableParameters(LanguageModel model) {
        return Peft.trainableNamedParameters(model.module());
    }

    /**
     * Saves what training produced into {@code dir}: the base model as a Hugging Face directory without PEFT; the
     * adapter directory ({@code adapter_config.json}, {@code adapter_model.safetensors}) for a PEFT model; with
     * {@code --merge}, LoRA merged into the weights, saved as a full Hugging Face directory.
     */
    void save(LanguageModel trained, DecoderForCausalLM net, Path dir, long maxShardBytes) {
        if (!(trained instanceof PeftModel m)) {
            DecoderCheckpoint.save(net, dir, maxShardBytes);
        } else if (existing.merge) {
            m.mergeAndUnload();
            DecoderCheckpoint.save(net, dir, maxShardBytes);
        } else {
            m.saveAdapter(dir);
        }
    }
}
