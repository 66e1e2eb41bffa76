package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.data.ChatMessage;
import dev.collie.models.generation.Generator;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.ChatTemplate;
import dev.collie.models.tokenizer.HfTokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;

/**
 * {@code collie generate}: continues a prompt, greedily or by sampling, with a KV cache; with {@code --chat}, answers
 * it as one user message in the tokenizer's chat template.
 */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Continue a prompt and print the prompt plus the generated text.",
            "--temperature 0 (the default) decodes greedily; above 0 it samples, from the top-p nucleus.",
            "--chat: the prompt is a user message (after --system, if given) in the tokenizer's chat template,"
                + " ending with the start of the assistant's turn; only the answer is printed."})
final class GenerateCommand implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR", required = true, description = "Hugging Face model directory")
    Path model;
    @Option(names = "--prompt", paramLabel = "TEXT", required = true, description = "the text to continue")
    String prompt;
    @Option(names = "--tokenizer", paramLabel = "DIR",
            description = "tokenizer.json or its directory (default: the model directory)")
    Path tokenizerPath;
    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "64",
            description = "most tokens to generate (default ${DEFAULT-VALUE})")
    int maxNewTokens;
    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0",
            description = "0 = greedy (default); e.g. 0.8 to sample")
    double temperature;
    @Option(names = "--top-p", paramLabel = "P", defaultValue = "1.0",
            description = "nucleus sampling threshold in (0, 1] (default ${DEFAULT-VALUE})")
    double topP;
    @Option(names = "--seed", paramLabel = "S", defaultValue = "42", description = "sampling seed") long seed;
    @Option(names = "--chat", description = "render the prompt with the tokenizer's chat template (chat_template in"
            + " tokenizer_config.json or chat_template.jinja) and print only the answer")
    boolean chat;
    @Option(names = "--system", paramLabel = "TEXT", description = "with --chat: a system message before the prompt")
    String system;

    @Override
    public Integer call() {
        Generator.Options options = Generator.Options.builder().maxNewTokens(maxNewTokens).temperature(temperature)
                .topP(topP).seed(seed).build();
        if (system != null && !chat) {
            throw new CollieException("--system is a message of a chat: give --chat as well");
        }
        DecoderForCausalLM net = CliSupport.loadModel(model);
        HfTokenizer tok = CliSupport.requiredTokenizer(tokenizerPath, model, net.config(), "generate");
        try {
            int[] ids = chat ? chatPrompt(tok) : tok.encode(prompt, true);
            int[] eos = CliSupport.eosIds(net.config(), tok);
            options = Generator.Options.builder().maxNewTokens(maxNewTokens).temperature(temperature).topP(topP)
                    .seed(seed).eosIds(eos).padId(tok.padId()).build();
            long t0 = System.nanoTime();
            int[] out = new Generator(net).generate(ids, options);
            double sec = (System.nanoTime() - t0) / 1e9;
            int[] shown = chat ? out : IntStream.concat(Arrays.stream(ids), Arrays.stream(out)).toArray();
            System.out.println(tok.decode(shown, true));
            System.err.printf(Locale.ROOT, "(%d prompt tokens, %d generated in %.2f s, %.1f tokens/s)%n", ids.length,
                    out.length, sec, out.length / Math.max(1e-9, sec));
        } finally {
            tok.close();
        }
        return 0;
    }

    /** The ids of [system], user: prompt, and the start of the assistant's turn, in the tokenizer's template. */
    private int[] chatPrompt(HfTokenizer tok) {
        ChatTemplate template = tok.chatTemplate().orElseThrow(() -> new CollieException("--chat: the tokenizer "
                + CliSupport.tokenizerDir(tok) + " has no chat template; add \"chat_template\" to its"
                + " tokenizer_config.json (or a chat_template.jinja beside it)"));
        List<ChatMessage> messages = new ArrayList<>();
        if (system != null) {
            messages.add(ChatMessage.system(system));
        }
        messages.add(ChatMessage.user(prompt));
        return template.encode(messages, true).ids();
    }
}
