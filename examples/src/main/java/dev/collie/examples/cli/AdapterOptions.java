package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.train.LanguageModel;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.peft.Peft;
import dev.collie.peft.PeftModel;
import dev.collie.peft.PeftType;
import org.nd4j.linalg.api.ndarray.INDArray;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/**
 * An existing adapter directory ({@code --adapter}, Hugging Face peft's format) and {@code --merge} (LoRA: fold it
 * into the base weights): what {@code score} takes, and part of {@code train}'s {@link PeftOptions} (a picocli
 * mixin).
 */
final class AdapterOptions {
    @Option(names = "--adapter", paramLabel = "DIR",
            description = "apply this adapter (adapter_config.json + adapter_model.safetensors, e.g. from peft)")
    Path adapter;
    @Option(names = "--merge", description = "LoRA: merge the adapter into the base weights (train saves a full"
            + " model; score scores the merged model)")
    boolean merge;

    /**
     * {@code net} with the {@code --adapter} directory applied (base frozen), merged with {@code --merge}; {@code net}
     * itself without {@code --adapter}.
     *
     * @throws CollieException for {@code --merge} without a LoRA adapter
     */
    LanguageModel apply(DecoderForCausalLM net) {
        if (adapter == null) {
            if (merge) {
                throw new CollieException("--merge needs a LoRA adapter: --adapter DIR (or, when training, --lora-r R)");
            }
            return net;
        }
        PeftModel m = Peft.loadAdapter(net, adapter);
        if (!merge) {
            return m;
        }
        if (m.config().type() != PeftType.LORA) {
            throw new CollieException("--merge applies to LoRA adapters only; " + adapter + " holds " + m.config().type());
        }
        return m.mergeAndUnload();
    }

    /** Labels for the loss: {@code ids} with -100 in front for the virtual tokens of prompt tuning / P-tuning. */
    static INDArray labels(LanguageModel model, INDArray ids) {
        return model instanceof PeftModel m ? m.labelsFor(ids) : ids;
    }
}
