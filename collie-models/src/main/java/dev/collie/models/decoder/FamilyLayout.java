package dev.collie.models.decoder;

import dev.collie.core.nn.Attention;
import dev.collie.core.nn.SwiGluMlp;

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
 */
public record FamilyLayout(String embed, String layers, String finalNorm, String head, String attention,
                           Attention.Projections projections, String mlp, SwiGluMlp.Names mlpNames, String inputNorm,
                           String postAttentionNorm) {
    /** LLaMA's names, which Qwen2, Qwen3, Mistral and InternLM (v1) use too. */
    public static final FamilyLayout LLAMA = new FamilyLayout("model.embed_tokens", "model.layers", "model.norm",
            "lm_head", "self_attn", Attention.Projections.SEPARATE, "mlp", SwiGluMlp.Names.LLAMA, "input_layernorm",
            "post_attention_layernorm");

    /** InternLM2's: one {@code wqkv} in KV-group order, {@code w1}/{@code w3}/{@code w2}, {@code output}. */
    public static final FamilyLayout INTERNLM2 = new FamilyLayout("model.tok_embeddings", "model.layers",
            "model.norm", "output", "attention",
            new Attention.Projections("wqkv", Attention.QkvLayout.GROUPED, "wo"), "feed_forward",
            new SwiGluMlp.Names("w1", "w3", "w2"), "attention_norm", "ffn_norm");

    /** The path of block {@code i}'s part {@code part} (e.g. {@code attention() + ".wqkv"}). */
    public String inLayer(int i, String part) {
        return layers + "." + i + "." + part;
    }
}
