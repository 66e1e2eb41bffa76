package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.models.decoder.DecoderConfig;
import picocli.CommandLine.Option;

/** The random LLaMA and batch shape that {@code collie bench} trains and {@code GemmFloor} times. */
public final class BenchShape {
    @Option(names = "--hidden", paramLabel = "H", defaultValue = "288",
            description = "hidden size (default: ${DEFAULT-VALUE}); the head size is H / --heads") int hidden;
    @Option(names = "--layers", paramLabel = "L", defaultValue = "6",
            description = "decoder layers (default: ${DEFAULT-VALUE})") int layers;
    @Option(names = "--heads", paramLabel = "N", defaultValue = "6",
            description = "attention heads (default: ${DEFAULT-VALUE})") int heads;
    @Option(names = "--kv-heads", paramLabel = "K", description = "key/value heads (grouped-query attention;"
            + " default: --heads)") Integer kvHeads;
    @Option(names = "--intermediate", paramLabel = "I", defaultValue = "768",
            description = "MLP width (default: ${DEFAULT-VALUE})") int intermediate;
    @Option(names = "--vocab", paramLabel = "V", defaultValue = "32000",
            description = "vocabulary size (default: ${DEFAULT-VALUE})") int vocab;
    @Option(names = "--batch", paramLabel = "B", defaultValue = "4",
            description = "rows per micro-batch (default: ${DEFAULT-VALUE})") int batch;
    @Option(names = "--seq", paramLabel = "T", defaultValue = "256",
            description = "tokens per row (default: ${DEFAULT-VALUE})") int seq;

    public int hidden() {
        return hidden;
    }

    public int layers() {
        return layers;
    }

    public int heads() {
        return heads;
    }

    /** Key/value heads: {@code --kv-heads}, or {@code --heads} when not given. */
    public int kvHeads() {
        return kvHeads == null ? heads : kvHeads;
    }

    public int intermediate() {
        return intermediate;
    }

    public int vocab() {
        return vocab;
    }

    public int batch() {
        return batch;
    }

    public int seq() {
        return seq;
    }

    /**
     * The model config: head size hidden / heads, positions for at least {@code --seq}.
     *
     * @throws CollieException for flags out of range or sizes the config refuses, naming the flags
     */
    public DecoderConfig config(boolean tieEmbeddings) {
        CliSupport.atLeast("--batch", batch, 1);
        CliSupport.atLeast("--seq", seq, 2);
        CliSupport.atLeast("--heads", heads, 1);
        try {
            return DecoderConfig.builder().vocabSize(vocab).hiddenSize(hidden).intermediateSize(intermediate)
                    .numHiddenLayers(layers).numAttentionHeads(heads).numKeyValueHeads(kvHeads())
                    .headDim(hidden / heads).maxPositionEmbeddings(Math.max(seq, 2048)).tieWordEmbeddings(tieEmbeddings)
                    .build();
        } catch (CollieException e) {
            throw new CollieException(String.format("the model of --vocab %d --hidden %d --layers %d --heads %d"
                    + " --kv-heads %d --intermediate %d: %s", vocab, hidden, layers, heads, kvHeads(), intermediate,
                    e.getMessage()), e);
        }
    }

    /**
     * Matmul FLOPs of one forward + backward over {@code batch × seq} tokens: 6·(matmul parameters)·tokens plus
     * attention's 12·layers·tokens·seq·(heads·headDim). A tied head still multiplies, so ties do not change it.
     */
    public double stepFlops() {
        DecoderConfig c = config(false);
        long q = (long) c.numAttentionHeads() * c.headDim();
        double tokens = (double) batch * seq;
        // attention: q·kᵀ and p·v forward, q·kᵀ again and four products in backward (Attention recomputes p)
        return 6.0 * matmulParameters() * tokens + 14.0 * c.numHiddenLayers() * tokens * seq * q;
    }

    /** Elements of the weights that multiply activations: every layer's projections and the output head. */
    public long matmulParameters() {
        DecoderConfig c = config(false);
        long h = c.hiddenSize();
        long q = (long) c.numAttentionHeads() * c.headDim();
        long kv = (long) c.numKeyValueHeads() * c.headDim();
        long perLayer = 2 * h * q + 2 * h * kv + 3L * h * c.intermediateSize();
        return perLayer * c.numHiddenLayers() + (long) c.vocabSize() * h;
    }
}
