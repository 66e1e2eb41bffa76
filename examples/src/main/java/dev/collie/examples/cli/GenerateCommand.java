package dev.collie.examples.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.data.ChatMessage;
import dev.collie.models.generation.Generator;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.ChatTemplate;
import dev.collie.models.tokenizer.HfTokenizer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code collie generate}: continues a prompt, or a JSONL file of prompts in batches, greedily or by sampling, with a
 * KV cache; with {@code --chat}, answers each as one user message in the tokenizer's chat template.
 */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Continue a prompt (--prompt) and print the prompt plus the generated text, or continue every"
                + " line of --prompts FILE.jsonl ({\"prompt\": ...} or {\"input\": ...}) and print one JSON line"
                + " each: {\"prompt\", \"output\", \"finish_reason\"}.",
            "--temperature 0 (the default) decodes greedily; above 0 it samples, after --top-k and --top-p.",
            "--chat: each prompt is a user message (after --system, if given) in the tokenizer's chat template,"
                + " ending with the start of the assistant's turn; only the answer is printed.",
            "The last line on standard error is 'tokens/s: N', the decoding speed after the prompts' forward."})
final class GenerateCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--model", paramLabel = "DIR", required = true, description = "Hugging Face model directory")
    Path model;
    @ArgGroup(multiplicity = "1")
    Input input;

    static final class Input {
        @Option(names = "--prompt", paramLabel = "TEXT", required = true, description = "the text to continue")
        String prompt;
        @Option(names = "--prompts", paramLabel = "FILE", required = true,
                description = "JSONL, one {\"prompt\": TEXT} (or {\"input\": TEXT}) a line")
        Path prompts;
    }

    @Option(names = "--tokenizer", paramLabel = "DIR",
            description = "tokenizer.json or its directory (default: the model directory)")
    Path tokenizerPath;
    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "64",
            description = "most tokens to generate per prompt (default ${DEFAULT-VALUE})")
    int maxNewTokens;
    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0",
            description = "0 = greedy (default); e.g. 0.8 to sample")
    double temperature;
    @Option(names = "--top-k", paramLabel = "K", defaultValue = "0",
            description = "sample among the K most probable tokens only (default 0: all)")
    int topK;
    @Option(names = "--top-p", paramLabel = "P", defaultValue = "1.0",
            description = "nucleus sampling threshold in (0, 1] (default ${DEFAULT-VALUE})")
    double topP;
    @Option(names = "--repetition-penalty", paramLabel = "R", defaultValue = "1.0",
            description = "divide the logit of every token already in the text by R (multiply a negative one);"
                    + " 1 = none (default), 1.1-1.3 is usual")
    double repetitionPenalty;
    @Option(names = "--stop", paramLabel = "TEXT", description = "end a continuation at this text, which is not"
            + " printed (repeatable)")
    List<String> stops = new ArrayList<>();
    @Option(names = "--batch-size", paramLabel = "B", defaultValue = "8",
            description = "with --prompts: prompts decoded together (default ${DEFAULT-VALUE})")
    int batchSize;
    @Option(names = "--seed", paramLabel = "S", defaultValue = "42", description = "sampling seed") long seed;
    @Option(names = "--chat", description = "render each prompt with the tokenizer's chat template (chat_template in"
            + " tokenizer_config.json or chat_template.jinja) and print only the answer")
    boolean chat;
    @Option(names = "--system", paramLabel = "TEXT", description = "with --chat: a system message before the prompt")
    String system;

    @Override
    public Integer call() {
        CliSupport.atLeast("--batch-size", batchSize, 1);
        Generator.Options.builder().maxNewTokens(maxNewTokens).temperature(temperature).topK(topK).topP(topP)
                .repetitionPenalty(repetitionPenalty).stopStrings(stops).build();   // settings checked before loading
        if (system != null && !chat) {
            throw new CollieException("--system is a message of a chat: give --chat as well");
        }
        List<String> prompts = input.prompt != null ? List.of(input.prompt) : readPrompts(input.prompts);
        DecoderForCausalLM net = CliSupport.loadModel(model);
        HfTokenizer tok = CliSupport.requiredTokenizer(tokenizerPath, model, net.config(), "generate");
        try {
            Generator.Options options = Generator.Options.builder().maxNewTokens(maxNewTokens).temperature(temperature)
                    .topK(topK).topP(topP).repetitionPenalty(repetitionPenalty).stopStrings(stops).seed(seed)
                    .eosIds(CliSupport.eosIds(net.config(), tok)).padId(tok.padId()).build();
            Generator generator = new Generator(net, ids -> tok.decode(ids, true));
            long decodeNanos = 0;
            long decodeTokens = 0;
            long generated = 0;
            long t0 = System.nanoTime();
            for (int from = 0; from < prompts.size(); from += batchSize) {
                List<String> texts = prompts.subList(from, Math.min(prompts.size(), from + batchSize));
                List<int[]> ids = new ArrayList<>();
                for (String text : texts) {
                    ids.add(chat ? chatPrompt(tok, text) : tok.encode(text, true));
                }
                Generator.Result result = generator.generate(ids, options, (row, id) -> true);
                decodeNanos += result.decodeNanos();
                decodeTokens += result.decodeTokens();
                for (int r = 0; r < texts.size(); r++) {
                    Generator.Completion c = result.completions().get(r);
                    generated += c.tokens().length;
                    String out = Generator.cutAtStop(tok.decode(c.tokens(), true), stops);
                    if (input.prompt != null) {
                        System.out.println(chat ? out : withPrompt(tok, ids.get(r), c.tokens(), out));
                    } else {
                        System.out.println(line(texts.get(r), out, c.finish()));
                    }
                }
            }
            double sec = (System.nanoTime() - t0) / 1e9;
            System.err.printf(Locale.ROOT, "(%d prompt(s), %d tokens generated in %.2f s)%n", prompts.size(),
                    generated, sec);
            System.err.printf(Locale.ROOT, "tokens/s: %.1f%n", decodeNanos == 0 ? 0 : decodeTokens * 1e9 / decodeNanos);
        } finally {
            tok.close();
        }
        return 0;
    }

    /**
     * The prompt and its continuation decoded together (a tokenizer may join the two texts differently than their
     * concatenation, e.g. SentencePiece's leading space), cut at the first stop string of the continuation.
     */
    private String withPrompt(HfTokenizer tok, int[] prompt, int[] tokens, String continuation) {
        int[] both = Arrays.copyOf(prompt, prompt.length + tokens.length);
        System.arraycopy(tokens, 0, both, prompt.length, tokens.length);
        String whole = tok.decode(both, true);
        String head = tok.decode(prompt, true);
        return whole.startsWith(head) ? head + Generator.cutAtStop(whole.substring(head.length()), stops)
                : head + continuation;
    }

    /** One JSON line of output: the prompt, the continuation and OpenAI's finish reason. */
    private static String line(String prompt, String output, Generator.Finish finish) {
        ObjectNode n = JSON.createObjectNode();
        n.put("prompt", prompt);
        n.put("output", output);
        n.put("finish_reason", finish == Generator.Finish.LENGTH ? "length" : "stop");
        return n.toString();
    }

    /** The prompts of a JSONL file: each line's "prompt" (or "input") text; blank lines skipped. */
    static List<String> readPrompts(Path file) {
        List<String> out = new ArrayList<>();
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (IOException e) {
            throw new CollieException("--prompts: cannot read " + file + ": " + e.getMessage(), e);
        }
        for (int i = 0; i < lines.size(); i++) {
            String where = file + ":" + (i + 1);
            if (lines.get(i).isBlank()) {
                continue;
            }
            JsonNode n;
            try {
                n = JSON.readTree(lines.get(i));
            } catch (JsonProcessingException e) {
                throw new CollieException(where + ": not JSON: " + e.getOriginalMessage());
            }
            JsonNode text = n == null || !n.isObject() ? null : n.has("prompt") ? n.get("prompt") : n.get("input");
            if (text == null || !text.isTextual()) {
                throw new CollieException(where + ": a line of --prompts is {\"prompt\": TEXT} (or {\"input\": TEXT})"
                        + (text == null ? "" : "; \"" + (n.has("prompt") ? "prompt" : "input") + "\" is not a string"));
            }
            out.add(text.asText());
        }
        if (out.isEmpty()) {
            throw new CollieException("--prompts: " + file + " has no prompt");
        }
        return out;
    }

    /** The ids of [system], user: prompt, and the start of the assistant's turn, in the tokenizer's template. */
    private int[] chatPrompt(HfTokenizer tok, String prompt) {
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
