package dev.collie.examples.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.io.SafeTensors;
import dev.collie.core.testing.Agreement;
import dev.collie.core.testing.NumericalParity;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static dev.collie.examples.cli.CliTest.assertUserError;
import static dev.collie.examples.cli.CliTest.maxAbsDiff;
import static dev.collie.examples.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CLI on the other families' checkpoints (tools/reference/make_family_fixtures.py): {@code train} from the
 * directory as a user would, in one rank and split over ranks, saves the family's own names and config and the
 * weights of torch's three AdamW steps.
 */
@NumericalParity
class CliFamiliesTest {
    private static final Path FAMILIES = Path.of("../collie-models/src/test/resources/fixtures/families");

    @ParameterizedTest(name = "{0} dp {1} tp {2} pp {3}")
    @CsvSource({"qwen2, 1, 1, 1", "qwen2, 1, 2, 1", "qwen2, 2, 1, 2", "internlm2, 1, 1, 1", "internlm2, 1, 2, 1",
            "internlm2, 2, 1, 2", "chatglm, 1, 1, 1", "chatglm, 1, 2, 1", "chatglm, 2, 1, 2", "mistral, 1, 2, 1", "qwen3, 1, 1, 1", "qwen3, 1, 2, 1", "internlm, 1, 1, 1",
            "moss-moon, 1, 1, 1", "moss-moon, 1, 2, 1", "moss-moon, 2, 1, 2", "moss-moon, 1, 1, 2",
            "moss-moon, 2, 2, 1"})
    void trainSavesTheFamilyAndTorchsThreeAdamWSteps(String family, int dp, int tp, int pp, @TempDir Path tmp)
            throws IOException {
        trainAndCompare(FAMILIES.resolve(family), family, dp, tp, pp, tmp);
    }

    /**
     * MOSS-moon-003 as MOSS ships its config.json (model_type "moss", CodeGen's keys) trains at tp 2 to torch's
     * weights and is saved as "moss" again, its auto_map kept.
     */
    @Test
    void mossMoonsOwnConfigTrainsSplitAndSavesAsMoss(@TempDir Path tmp) throws IOException {
        Path src = FAMILIES.resolve("moss-moon");
        Path dir = Files.createDirectories(tmp.resolve("moss"));
        Files.copy(src.resolve("config-moss.json"), dir.resolve("config.json"));
        for (String f : List.of("model.safetensors", "adamw_reference.safetensors", "adamw_rows.jsonl")) {
            Files.copy(src.resolve(f), dir.resolve(f));
        }
        Path save = trainAndCompare(dir, "moss", 1, 2, 1, tmp);
        var saved = new ObjectMapper().readTree(save.resolve("config.json").toFile());
        assertEquals("MossForCausalLM", saved.get("architectures").get(0).asText());
        assertEquals("modeling_moss.MossForCausalLM", saved.get("auto_map").get("AutoModelForCausalLM").asText());
    }

    /** LoRA's default target on MOSS-moon is its fused qkv_proj (peft's for codegen), the same adapter at tp 2. */
    @Test
    void loraOnMossMoonTargetsQkvProjAndTrainsTheSameAdapterSplit(@TempDir Path tmp) throws IOException {
        Path dir = FAMILIES.resolve("moss-moon");
        List<String> common = List.of("train", "--model", dir.toString(), "--data",
                dir.resolve("adamw_rows.jsonl").toString(), "--lora-r", "2", "--micro-batch", "2", "--no-shuffle",
                "--steps", "3", "--lr", "1e-2", "--eps", Double.toString(Agreement.ADAM_EPS_ABOVE_NOISE));
        double worst = 0;
        for (int tp : new int[] {1, 2}) {
            List<String> args = new ArrayList<>(common);
            args.addAll(List.of("--tp", Integer.toString(tp), "--save", tmp.resolve("tp" + tp).toString()));
            CliTest.Result r = run(args.toArray(String[]::new));
            assertEquals(0, r.code(), r.err());
            var config = new ObjectMapper().readTree(tmp.resolve("tp" + tp).resolve("adapter_config.json").toFile());
            assertEquals("[\"qkv_proj\"]", config.get("target_modules").toString());
        }
        try (SafeTensors a = SafeTensors.open(tmp.resolve("tp1/adapter_model.safetensors"));
             SafeTensors b = SafeTensors.open(tmp.resolve("tp2/adapter_model.safetensors"))) {
            assertEquals(4, a.names().size());      // lora_A and lora_B of both layers' qkv_proj
            assertEquals(a.names(), b.names());
            for (String n : a.names()) {
                assertTrue(n.contains(".attn.qkv_proj.lora_"), n);
                worst = Math.max(worst, maxAbsDiff(a.load(n), b.load(n)));
            }
        }
        Agreement.within("moss-moon LoRA (qkv_proj) adapter trained at tp 2 vs one rank's", worst, 1e-5);
    }

    /**
     * {@code train} from {@code dir} with dp × tp × pp ranks: the saved config keeps {@code dir}'s model_type and the
     * saved weights are torch's after 3 AdamW steps; returns the save directory.
     */
    private static Path trainAndCompare(Path dir, String family, int dp, int tp, int pp, Path tmp) throws IOException {
        Path save = tmp.resolve("out");
        List<String> args = new ArrayList<>(List.of("train", "--model", dir.toString(), "--data",
                dir.resolve("adamw_rows.jsonl").toString(), "--micro-batch", Integer.toString(2 / dp), "--no-shuffle",
                "--steps", "3", "--lr", "1e-2", "--weight-decay", "0.01", "--eps",
                Double.toString(Agreement.ADAM_EPS_ABOVE_NOISE), "--dp", Integer.toString(dp), "--tp",
                Integer.toString(tp), "--pp", Integer.toString(pp), "--save", save.toString()));
        CliTest.Result r = run(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        ObjectMapper json = new ObjectMapper();
        assertEquals(json.readTree(dir.resolve("config.json").toFile()).get("model_type"),
                json.readTree(save.resolve("config.json").toFile()).get("model_type"));
        CliTest.assertSavedEqualsTorchAdamW(dir, save, family + " dp " + dp + " tp " + tp + " pp " + pp + ": ");
        return save;
    }

    /** A remote-code family's directory stays loadable by transformers: auto_map kept, its Python files copied. */
    @Test
    void savingARemoteCodeModelKeepsItsAutoMapAndPythonFiles(@TempDir Path tmp) throws IOException {
        Path src = FAMILIES.resolve("internlm2");
        Path dir = Files.createDirectories(tmp.resolve("internlm2"));
        Files.copy(src.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        String autoMap = "\"auto_map\": {\"AutoConfig\": \"configuration_internlm2.InternLM2Config\","
                + " \"AutoModelForCausalLM\": \"modeling_internlm2.InternLM2ForCausalLM\"},";
        Files.writeString(dir.resolve("config.json"), Files.readString(src.resolve("config.json"))
                .replaceFirst("\\{", "{" + autoMap));
        Files.writeString(dir.resolve("modeling_internlm2.py"), "# the model's own code\n");
        Path save = tmp.resolve("out");
        CliTest.Result r = run("train", "--model", dir.toString(), "--data", src.resolve("adamw_rows.jsonl").toString(),
                "--micro-batch", "2", "--steps", "1", "--save", save.toString());
        assertEquals(0, r.code(), r.err());
        var saved = new ObjectMapper().readTree(save.resolve("config.json").toFile());
        assertEquals("modeling_internlm2.InternLM2ForCausalLM", saved.get("auto_map").get("AutoModelForCausalLM").asText());
        assertEquals("# the model's own code\n", Files.readString(save.resolve("modeling_internlm2.py")));
    }

    /** Above --max-shard-size the model is saved in shards with an index, which loads back as the same weights. */
    @Test
    void aModelAboveTheShardSizeIsSavedInShards(@TempDir Path tmp) throws IOException {
        Path src = FAMILIES.resolve("chatglm");
        Path save = tmp.resolve("out");
        CliTest.Result r = run("train", "--model", src.toString(), "--data", src.resolve("adamw_rows.jsonl").toString(),
                "--micro-batch", "2", "--steps", "1", "--max-shard-size", "40KB", "--save", save.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isRegularFile(save.resolve("model.safetensors.index.json")));
        assertFalse(Files.exists(save.resolve("model.safetensors")));
        long shards;
        try (var files = Files.list(save)) {
            shards = files.filter(f -> f.getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors"))
                    .count();
        }
        assertTrue(shards >= 3, shards + " shards");
        assertEquals(0, run("score", "--model", save.toString(), "--ids", "1,2,3").code());
        assertUserError(run("train", "--model", src.toString(), "--data", src.resolve("adamw_rows.jsonl").toString(),
                "--steps", "1", "--max-shard-size", "5 gigs", "--save", tmp.resolve("x").toString()),
                "--max-shard-size 5 gigs", "500MB");
    }

    @Test
    void aFamilyOutsideTheListNamesTheSupportedOnes(@TempDir Path tmp) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("gpt"));
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"gpt2\", \"n_embd\": 32}");
        assertUserError(run("score", "--model", dir.toString(), "--ids", "1,2,3"), "model_type \"gpt2\"",
                "supported: llama, qwen2, qwen3, mistral, internlm, internlm2, chatglm, codegen, moss");
    }

    @Test
    void anInternLm2WhoseFusedProjectionDisagreesWithItsHeadsNamesBothShapes(@TempDir Path tmp) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("m"));
        Path src = FAMILIES.resolve("internlm2");
        Files.copy(src.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        Files.writeString(dir.resolve("config.json"), Files.readString(src.resolve("config.json"))
                .replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 4"));
        assertUserError(run("score", "--model", dir.toString(), "--ids", "1,2,3"),
                "model.layers.0.attention.wqkv.weight", "[64, 32]", "[96, 32]");
    }
}
