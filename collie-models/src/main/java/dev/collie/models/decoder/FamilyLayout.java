package dev.collie.models.decoder;

import dev.collie.core.nn.Attention;
import dev.collie.core.nn.SwiGluMlp;
import dev.collie.core.tensor.RotaryPairs;

/**
 * Where a family keeps each part of its model: the module paths its own checkpoints name the weights by, so that
 * loading and saving are the identity and adapters target the family's names ({@code wqkv}, {@code q_proj}, ...).
 *
 * @param embed the token embedding, from the root ({@code model.embed_tokens})
 * @param layers the list of decoder blocks, from the root ({@code model.layers})
 * @param finalNorm the norm after the last block, from the root
 * @param head the output head, from the root (absent when tied to the embedding)
 * @param attention a block's attention, within the block
 * @param projections the attention's projections and their names
 * @param mlp a block's feed-forward network, within the block
 * @param mlpNames its three projections
 * @param inputNorm the norm before the attention, within the block
 * @param postAttentionNorm the norm before the feed-forward network, within the block
 * @param rotaryPairs which dimensions of a head the rotary embedding turns together
 * @param halfHeadRotary whether only the first half of each head is rotated (ChatGLM), else all of it
 */
public record FamilyLayout(String embed, String layers, String finalNorm, String head, String attention,
                           Attention.Projections projections, String mlp, SwiGluMlp.Names mlpNames, String inputNorm,
                           String postAttentionNorm, RotaryPairs rotaryPairs, boolean halfHeadRotary) {
    /** LLaMA's names, which Qwen2, Qwen3, Mistral and InternLM (v1) use too. */
    public static final FamilyLayout LLAMA = new FamilyLayout("model.embed_tokens", "model.layers", "model.norm",
            "lm_head", "self_attn", Attention.Projections.SEPARATE, "mlp", SwiGluMlp.Names.LLAMA, "input_layernorm",
            "post_attention_layernorm", RotaryPairs.HALVES, false);

    /** InternLM2's: one {@code wqkv} in KV-group order, {@code w1}/{@code w3}/{@code w2}, {@code output}. */
    public static final FamilyLayout INTERNLM2 = new FamilyLayout("model.tok_embeddings", "model.layers",
            "model.norm", "output", "attention",
            new Attention.Projections("wqkv", Attention.QkvLayout.GROUPED, "wo"), "feed_forward",
            new SwiGluMlp.Names("w1", "w3", "w2"), "attention_norm", "ffn_norm", RotaryPairs.HALVES, false);

    /**
     * ChatGLM2/3's: {@code query_key_value} as all queries, then the key groups, then the value groups;
     * {@code dense_h_to_4h} as {@code [gate | up]}; rotary on the first half of each head in interleaved pairs.
     */
    public static final FamilyLayout CHATGLM = new FamilyLayout("transformer.embedding.word_embeddings",
            "transformer.encoder.layers", "transformer.encoder.final_layernorm", "transformer.output_layer",
            "self_attention", new Attention.Projections("query_key_value", Attention.QkvLayout.SECTIONED, "dense"),
            "mlp", SwiGluMlp.Names.fused("dense_h_to_4h", "dense_4h_to_h"), "input_layernorm",
            "post_attention_layernorm", RotaryPairs.INTERLEAVED, true);

    /** The dimensions of a head of {@code headDim} that the rotary embedding turns. */
    public int rotaryDims(int headDim) {
        return halfHeadRotary ? headDim / 2 : headDim;
    }

    /** The path of block {@code i}'s part {@code part} (e.g. {@code attention() + ".wqkv"}). */
    public String inLayer(int i, String part) {
        return layers + "." + i + "." + part;
    }
}
