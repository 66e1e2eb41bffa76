package dev.collie.models.decoder;

import dev.collie.core.nn.Attention;
import dev.collie.core.nn.GeluMlp;
import dev.collie.core.nn.LayerNorm;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.RMSNorm;
import dev.collie.core.nn.SwiGluMlp;
import dev.collie.core.tensor.RotaryPairs;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.List;

/**
 * Where a family keeps each part of its model and how its block is built: the module paths its own checkpoints
 * name the weights by, so that loading and saving are the identity and adapters target the family's names
 * ({@code wqkv}, {@code q_proj}, ...), and the block's norms, feed-forward network and residual shape.
 *
 * @param embed the token embedding, from the root ({@code model.embed_tokens})
 * @param layers the list of decoder blocks, from the root ({@code model.layers})
 * @param finalNorm the norm after the last block, from the root
 * @param head the output head, from the root (absent when tied to the embedding)
 * @param attention a block's attention, within the block
 * @param projections the attention's projections and their names
 * @param mlp a block's feed-forward network, within the block
 * @param feedForward which network that is, and its projections' names
 * @param inputNorm the norm before the attention, within the block
 * @param postAttentionNorm the norm before the feed-forward network, within the block; null for a parallel block
 *                          (GPT-J's), whose attention and feed-forward network both read {@code inputNorm}'s output
 *                          and add to the same residual: {@code y = x + attn(norm(x)) + mlp(norm(x))}
 * @param rotaryPairs which dimensions of a head the rotary embedding turns together
 * @param norm every norm's kind (the blocks' and the final one)
 * @param headBias whether the output head has a bias
 */
public record FamilyLayout(String embed, String layers, String finalNorm, String head, String attention,
                           Attention.Projections projections, String mlp, FeedForward feedForward, String inputNorm,
                           String postAttentionNorm, RotaryPairs rotaryPairs, Norm norm, boolean headBias) {
    /** LLaMA's names, which Qwen2, Qwen3, Mistral and InternLM (v1) use too. */
    public static final FamilyLayout LLAMA = new FamilyLayout("model.embed_tokens", "model.layers", "model.norm",
            "lm_head", "self_attn", Attention.Projections.SEPARATE, "mlp", new FeedForward.SwiGlu(SwiGluMlp.Names.LLAMA),
            "input_layernorm", "post_attention_layernorm", RotaryPairs.HALVES, Norm.RMS_NORM, false);

    /** InternLM2's: one {@code wqkv} in KV-group order, {@code w1}/{@code w3}/{@code w2}, {@code output}. */
    public static final FamilyLayout INTERNLM2 = new FamilyLayout("model.tok_embeddings", "model.layers",
            "model.norm", "output", "attention",
            new Attention.Projections("wqkv", Attention.QkvLayout.GROUPED, "wo"), "feed_forward",
            new FeedForward.SwiGlu(new SwiGluMlp.Names("w1", "w3", "w2")), "attention_norm", "ffn_norm",
            RotaryPairs.HALVES, Norm.RMS_NORM, false);

    /**
     * ChatGLM2/3's: {@code query_key_value} as all queries, then the key groups, then the value groups;
     * {@code dense_h_to_4h} as {@code [gate | up]}; rotary in interleaved pairs (on the first half of each head).
     */
    public static final FamilyLayout CHATGLM = new FamilyLayout("transformer.embedding.word_embeddings",
            "transformer.encoder.layers", "transformer.encoder.final_layernorm", "transformer.output_layer",
            "self_attention", new Attention.Projections("query_key_value", Attention.QkvLayout.SECTIONED, "dense"),
            "mlp", new FeedForward.SwiGlu(SwiGluMlp.Names.fused("dense_h_to_4h", "dense_4h_to_h")), "input_layernorm",
            "post_attention_layernorm", RotaryPairs.INTERLEAVED, Norm.RMS_NORM, false);

    /** The groups of CodeGen's {@code qkv_proj} (its {@code mp_num}, fixed in its code: the TPU-v4 cores it was trained on). */
    public static final int CODEGEN_QKV_GROUPS = 4;

    /**
     * CodeGen's (and MOSS-moon-003's): {@code qkv_proj} as {@value #CODEGEN_QKV_GROUPS} groups of
     * {@code [queries | values | keys]}, the parallel block with one LayerNorm {@code ln_1}, {@code fc_in}/{@code fc_out}
     * with gelu_new, rotary on the first {@code rotary_dim} dimensions of each head in interleaved pairs (GPT-J's),
     * an output head with a bias.
     */
    public static final FamilyLayout CODEGEN = new FamilyLayout("transformer.wte", "transformer.h", "transformer.ln_f",
            "lm_head", "attn", new Attention.Projections("qkv_proj", new Attention.QkvLayout(CODEGEN_QKV_GROUPS,
                    List.of(Attention.QkvLayout.Part.QUERY, Attention.QkvLayout.Part.VALUE,
                            Attention.QkvLayout.Part.KEY)), "out_proj"),
            "mlp", new FeedForward.Gelu(GeluMlp.Names.CODEGEN), "ln_1", null, RotaryPairs.INTERLEAVED,
            Norm.LAYER_NORM, true);

    /** The kinds of norm: LLaMA's RMSNorm (a weight) or GPT's LayerNorm (a weight and a bias). */
    public enum Norm {
        RMS_NORM, LAYER_NORM;

        /** A new norm over {@code dim} features. */
        public Module create(long dim, double eps, DataType dtype) {
            return this == RMS_NORM ? new RMSNorm(dim, eps, dtype) : new LayerNorm(dim, eps, dtype);
        }

        /** Whether the norm has a bias besides its weight. */
        public boolean hasBias() {
            return this == LAYER_NORM;
        }
    }

    /** Whether the block is parallel: attention and feed-forward network on one norm's output ({@link #postAttentionNorm}). */
    public boolean parallelBlock() {
        return postAttentionNorm == null;
    }

    /** The path of block {@code i}'s part {@code part} (e.g. {@code attention() + ".wqkv"}). */
    public String inLayer(int i, String part) {
        return layers + "." + i + "." + part;
    }
}
