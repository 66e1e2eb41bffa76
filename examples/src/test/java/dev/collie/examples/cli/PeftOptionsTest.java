package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Tape;
import dev.collie.core.train.LanguageModel;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.peft.PeftModel;
import dev.collie.peft.PeftType;
import dev.collie.peft.PrefixTuningConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PeftOptionsTest {
    private static final Path FIXTURES = Path.of("../collie-models/src/test/resources/fixtures");
    private static final Path TINY = FIXTURES.resolve("tiny-llama");

    @Command(name = "t")
    static final class Cmd {
        @Mixin PeftOptions peft;
    }

    private static PeftOptions parse(String... args) {
        Cmd c = new Cmd();
        new CommandLine(c).parseArgs(args);
        return c.peft;
    }

    private static DecoderForCausalLM tiny() {
        return DecoderCheckpoint.load(TINY, DataType.FLOAT);
    }

    @Test
    void withoutFlagsTheModelIsUnchanged() {
        DecoderForCausalLM net = tiny();
        PeftOptions p = parse();
        assertFalse(p.active());
        assertSame(net, p.apply(net, TINY));
        assertEquals(net.namedParameters().size(), p.trainableParameters(net).size());
    }

    @Test
    void loraFlagsWrapTheNamedOrMatchedLinears() {
        PeftModel m = (PeftModel) parse("--lora-r", "4", "--lora-alpha", "16", "--lora-dropout", "0.05")
                .apply(tiny(), TINY);
        assertEquals(4, m.loraModules().size());   // q_proj, v_proj in both layers (peft's default for LLaMA)
        assertEquals(4.0, m.loraModules().values().iterator().next().scaling());
        PeftModel mlp = (PeftModel) parse("--lora-r", "2", "--lora-targets", ".*mlp.*").apply(tiny(), TINY);
        assertEquals(6, mlp.loraModules().size());
        assertEquals(12, parse("--lora-r", "2").trainableParameters(mlp).size());
    }

    @Test
    void prefixPromptAndPTuningFlagsChooseTheMethod() {
        PeftModel prefix = (PeftModel) parse("--prefix-tokens", "3", "--prefix-projection", "16").apply(tiny(), TINY);
        assertTrue(((PrefixTuningConfig) prefix.config()).prefixProjection());
        assertEquals(PeftType.PROMPT_TUNING, ((PeftModel) parse("--prompt-tokens", "4").apply(tiny(), TINY))
                .config().type());
        PeftModel pt = (PeftModel) parse("--prompt-tokens", "4", "--prompt-encoder-hidden", "20").apply(tiny(), TINY);
        assertEquals(PeftType.P_TUNING, pt.config().type());
        INDArray labels = AdapterOptions.labels(pt, Nd4j.createFromArray(new long[][] {{1, 2}}));
        assertEquals(6, labels.size(1));
    }

    @Test
    void conflictingFlagsAreErrors() {
        assertThrows(CollieException.class, () -> parse("--lora-r", "4", "--prompt-tokens", "3").apply(tiny(), TINY));
        assertThrows(CollieException.class, () -> parse("--lora-alpha", "4").apply(tiny(), TINY));
        assertThrows(CollieException.class, () -> parse("--prefix-tokens", "3", "--merge").apply(tiny(), TINY));
        assertThrows(CollieException.class, () -> parse("--merge").apply(tiny(), TINY));
        // scoring takes an existing adapter only: the training flags are not its options
        assertThrows(CommandLine.UnmatchedArgumentException.class, () -> scoreOptions("--lora-r", "4"));
        assertThrows(CollieException.class, () -> scoreOptions("--merge").apply(tiny()));
    }

    @Command(name = "s")
    static final class ScoreCmd {
        @Mixin AdapterOptions adapter;
    }

    private static AdapterOptions scoreOptions(String... args) {
        ScoreCmd c = new ScoreCmd();
        new CommandLine(c).parseArgs(args);
        return c.adapter;
    }

    @Test
    void scoringWithAMergedAdapterGivesTheAdaptersLogits() {
        Path adapter = FIXTURES.resolve("peft/lora");
        INDArray ids = Nd4j.createFromArray(new long[][] {{3, 9, 27, 81, 50}});
        LanguageModel withAdapter = scoreOptions("--adapter", adapter.toString()).apply(tiny());
        assertInstanceOf(PeftModel.class, withAdapter);
        LanguageModel merged = scoreOptions("--adapter", adapter.toString(), "--merge").apply(tiny());
        assertInstanceOf(DecoderForCausalLM.class, merged);
        INDArray a = withAdapter.forward(Tape.forInference(1, 5), ids);
        INDArray b = merged.forward(Tape.forInference(1, 5), ids);
        assertTrue(a.equalsWithEps(b, 1e-5));
    }

    @Test
    void trainingSavesTheAdapterOrWithMergeAFullModel(@TempDir Path tmp) {
        PeftOptions p = parse("--lora-r", "2");
        DecoderForCausalLM net = tiny();
        LanguageModel m = p.apply(net, TINY);
        p.save(m, net, tmp.resolve("adapter"), Long.MAX_VALUE);
        assertTrue(Files.isRegularFile(tmp.resolve("adapter/adapter_config.json")));
        assertTrue(Files.isRegularFile(tmp.resolve("adapter/adapter_model.safetensors")));
        PeftOptions pm = parse("--lora-r", "2", "--merge");
        DecoderForCausalLM net2 = tiny();
        pm.save(pm.apply(net2, TINY), net2, tmp.resolve("merged"), Long.MAX_VALUE);
        assertTrue(Files.isRegularFile(tmp.resolve("merged/config.json")));
        assertEquals(tiny().namedParameters().keySet(),
                DecoderCheckpoint.load(tmp.resolve("merged"), DataType.FLOAT).namedParameters().keySet());
    }
}
