#!/usr/bin/env python3
"""Generate the per-family HuggingFace/PyTorch reference fixtures used by collie-models tests.

Run (from the repository root; the script is deterministic and re-runnable, it
rewrites every directory it owns and leaves anything else under --out alone):

    /work/pyref/bin/python tools/reference/make_family_fixtures.py
    # or:  python tools/reference/make_family_fixtures.py --out collie-models/src/test/resources/fixtures/families

Needs torch, transformers (>= 5), safetensors.  Produced with torch 2.13.0+cpu,
transformers 5.18.0, safetensors 0.8.0 (the exact versions are also stored in the
safetensors metadata of every reference file, in every generation.json and in
families/README.md).

What it writes (under --out, default collie-models/src/test/resources/fixtures/families), one directory per family:

  qwen2/       Qwen2ForCausalLM, tied embeddings, layer 0 full attention, layer 1 sliding window 4   (save_pretrained)
  qwen2-bf16/  the qwen2 weights cast to bfloat16 (save_pretrained, dtype bfloat16); reference only
  qwen3/       Qwen3ForCausalLM, head_dim 16 != hidden/heads, q_norm/k_norm, untied                 (save_pretrained)
  mistral/     MistralForCausalLM, sliding window 5 on every layer, untied                          (save_pretrained)
  internlm/    InternLM v1 (remote code): Llama names, bias on q/k/v/o, MHA, rope base 10000      (written here)
  internlm2/   InternLM2 (remote code): fused wqkv, w1/w3/w2, dynamic NTK rope                     (written here)
  chatglm/     ChatGLM3-6B format (remote code): fused query_key_value with bias, fused
               dense_h_to_4h, MQA 2 groups, interleaved rope on half of each head                (written here)
  moss-moon/   MOSS-moon-003 = CodeGenForCausalLM (save_pretrained) + config-moss.json in MOSS's own format

Each directory (qwen2-bf16: the first two items only):
  config.json + model.safetensors      the checkpoint as a user gets it (original names and layout)
  reference.safetensors                fixed batch, logits, loss, grad.<checkpoint name> of every parameter
  adamw_reference.safetensors          3 AdamW steps (eps 1e-3): batches, per-step losses, adamw/final.<checkpoint name>
  adamw_rows.jsonl                     the same 3 batches, one {"tokens":[...]} line per row
  generation.json                      greedy decoding, 6-token prompt + 14 new tokens, with and without KV cache

For the remote-code families (no transformers class) the reference numbers come from a transformers model
that computes the same function on re-laid-out weights (LlamaForCausalLM for internlm/internlm2,
GlmForCausalLM for chatglm); the mapping functions below go both ways, are asserted to round-trip bit-exactly,
and every gradient / final weight is mapped back to the checkpoint's own names and fused layouts.  For
internlm2 and chatglm the script additionally re-implements the remote code's forward pass on the
original tensors (transcribed from modeling_internlm2.py / ChatGLM3's modeling_chatglm.py) and asserts that
it gives the reference logits to 1e-5.

All computation runs on CPU in float32 with the eager attention implementation and a
single thread so the numbers are bit-reproducible on one machine (and reproducible to
~1e-7 elsewhere).
"""

import argparse
import copy
import json
import math
import os
import shutil

import torch
import torch.nn.functional as F
from torch import nn
import transformers
import safetensors
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import (CodeGenConfig, CodeGenForCausalLM, GenerationConfig, GlmConfig, GlmForCausalLM,
                          LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "collie-models", "src", "test", "resources", "fixtures", "families")
GENERATOR = "tools/reference/make_family_fixtures.py"

# the sizes of make_llama_fixtures.py's tiny model, wherever the family allows them
TINY = dict(
    vocab_size=96,
    hidden_size=32,
    intermediate_size=80,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    rms_norm_eps=1e-5,
    max_position_embeddings=64,
    initializer_range=0.02,
)
THETA = 50000.0
BOS, EOS = 1, 2     # in the vocabulary (the families' real ids are not); generation disables EOS anyway

# the same AdamW numbers as make_llama_fixtures.py (eps 1e-3: see the note there)
ADAMW = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-3, weight_decay=0.01)

BATCH, SEQ = 2, 12
BATCH_SEED, ADAMW_SEED, PROMPT_SEED = 1234, 4321, 777
PROMPT_LEN, NEW_TOKENS = 6, 14


def versions():
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "generator": GENERATOR,
    }


def save_st(tensors, path, meta):
    """safetensors keeps metadata in a hash map whose order varies run to run; one key keeps the bytes stable."""
    save_file(tensors, path, metadata={"info": json.dumps(meta, sort_keys=True)})


def f32(t):
    return t.detach().to(torch.float32).contiguous().clone()


def write_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def reference_batch(seed, vocab):
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, vocab, (BATCH, SEQ), generator=gen, dtype=torch.int64)
    labels = input_ids.clone()
    labels[1, :3] = -100          # first 3 tokens of row 1 ignored
    labels[0, 7] = -100           # and one position in the middle of row 0
    return input_ids, labels


def perturb(model, seed):
    """Every norm weight (RMSNorm incl. Qwen3's q_norm/k_norm, LayerNorm) -> 1 + 0.1*randn, every bias -> 0.05*randn.

    HF initialises norm weights to one and biases to zero, which would hide a missing norm weight or bias."""
    norm_weights = set()
    for mname, mod in model.named_modules():
        if isinstance(mod, nn.LayerNorm) or "RMSNorm" in type(mod).__name__:
            norm_weights.add(f"{mname}.weight")
    gen = torch.Generator().manual_seed(seed)
    touched = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in norm_weights:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            else:
                continue
            touched.append(name)
    return touched


def st_dtypes(path):
    """{name: safetensors dtype string} straight from the file header."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}


def reset_dir(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


# ---------------------------------------------------------------- families

class Family:
    """A checkpoint format plus the transformers model that computes its reference numbers.

    to_ckpt/from_ckpt map {reference-model name: tensor} <-> {checkpoint name: tensor} (exact re-layouts, so the
    same functions map parameters, gradients and AdamW results)."""
    name = None
    seed = None
    generation = True
    adamw = True

    def build(self):
        raise NotImplementedError

    def save(self, model, path):
        raise NotImplementedError

    def load(self, path):
        raise NotImplementedError

    def to_ckpt(self, tensors):
        return {k: v.contiguous() for k, v in tensors.items()}

    def from_ckpt(self, tensors):
        return dict(tensors)

    def build_seeded(self, cls, cfg):
        torch.manual_seed(self.seed)
        model = cls(cfg).to(torch.float32)
        touched = perturb(model, self.seed + 1000)
        model.eval()
        return model, touched


class HfFamily(Family):
    cls = None

    def save(self, model, path):
        model.save_pretrained(path, safe_serialization=True)

    def load(self, path):
        return self.cls.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")


class Qwen2Family(HfFamily):
    name, seed, cls = "qwen2", 10, Qwen2ForCausalLM

    def config(self):
        cfg = Qwen2Config(rope_parameters={"rope_type": "default", "rope_theta": THETA}, tie_word_embeddings=True,
                          use_sliding_window=True, sliding_window=4, max_window_layers=1,
                          bos_token_id=BOS, eos_token_id=EOS, **TINY)
        cfg._attn_implementation = "eager"
        # layer i is sliding iff use_sliding_window and i >= max_window_layers (Qwen2Config.__post_init__)
        assert cfg.layer_types == ["full_attention", "sliding_attention"], cfg.layer_types
        assert cfg.sliding_window == 4
        return cfg

    def build(self):
        return self.build_seeded(Qwen2ForCausalLM, self.config())


class Qwen2Bf16Family(Qwen2Family):
    """The qwen2 weights in bfloat16; the reference is HF's fp32 run on the upcast weights."""
    name = "qwen2-bf16"
    generation = False
    adamw = False

    def save(self, model, path):
        bf = copy.deepcopy(model).to(torch.bfloat16)
        bf.config.dtype = torch.bfloat16
        bf.save_pretrained(path, safe_serialization=True)
        with open(os.path.join(path, "config.json")) as f:
            assert json.load(f)["dtype"] == "bfloat16"
        dt = st_dtypes(os.path.join(path, "model.safetensors"))
        assert set(dt.values()) == {"BF16"}, dt

    def load(self, path):
        m = Qwen2ForCausalLM.from_pretrained(path, dtype=torch.bfloat16, attn_implementation="eager")
        assert next(m.parameters()).dtype == torch.bfloat16
        return m.to(torch.float32)


class Qwen3Family(HfFamily):
    name, seed, cls = "qwen3", 11, Qwen3ForCausalLM

    def build(self):
        tiny = dict(TINY, head_dim=16)   # explicit head_dim != hidden_size / num_attention_heads (= 8)
        cfg = Qwen3Config(rope_parameters={"rope_type": "default", "rope_theta": THETA}, tie_word_embeddings=False,
                          attention_bias=False, use_sliding_window=False, bos_token_id=BOS, eos_token_id=EOS, **tiny)
        cfg._attn_implementation = "eager"
        assert cfg.layer_types == ["full_attention", "full_attention"] and cfg.sliding_window is None
        return self.build_seeded(Qwen3ForCausalLM, cfg)


class MistralFamily(HfFamily):
    name, seed, cls = "mistral", 12, MistralForCausalLM

    def build(self):
        cfg = MistralConfig(rope_parameters={"rope_type": "default", "rope_theta": THETA}, tie_word_embeddings=False,
                            sliding_window=5, bos_token_id=BOS, eos_token_id=EOS, **TINY)
        cfg._attn_implementation = "eager"
        return self.build_seeded(MistralForCausalLM, cfg)


class MossMoonFamily(HfFamily):
    """MOSS-moon-003 is CodeGen (its remote modeling_moss.py is a copy of CodeGen's, mp_num = 4 included)."""
    name, seed, cls = "moss-moon", 16, CodeGenForCausalLM

    # initializer_range 0.1 (not 0.02): with 0.02 the fc_in outputs are so small that gelu_new and the exact (erf)
    # GELU give logits 1.2e-6 apart, below what a float32 comparison can tell; with 0.1 they are 4.8e-4 apart
    FIELDS = dict(vocab_size=96, n_embd=32, n_layer=2, n_head=4, rotary_dim=4, n_positions=64, n_ctx=64,
                  n_inner=None, activation_function="gelu_new", layer_norm_epsilon=1e-5, initializer_range=0.1,
                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False,
                  bos_token_id=BOS, eos_token_id=EOS)

    def build(self):
        cfg = CodeGenConfig(**self.FIELDS)
        return self.build_seeded(CodeGenForCausalLM, cfg)

    def load(self, path):
        return CodeGenForCausalLM.from_pretrained(path, dtype=torch.float32)

    def save(self, model, path):
        super().save(model, path)
        write_json(self.moss_config(), os.path.join(path, "config-moss.json"))

    def moss_config(self):
        """config.json the way MOSS-moon-003 ships it (CoLLiE's moss_moon save writes the same keys)."""
        f = self.FIELDS
        d = {
            "activation_function": f["activation_function"],
            "architectures": ["MossForCausalLM"],
            "auto_map": {"AutoConfig": "configuration_moss.MossConfig", "AutoModel": "modeling_moss.MossModel",
                         "AutoModelForCausalLM": "modeling_moss.MossForCausalLM"},
            "attn_pdrop": f["attn_pdrop"],
            "bos_token_id": f["bos_token_id"],
            "embd_pdrop": f["embd_pdrop"],
            "eos_token_id": f["eos_token_id"],
            "gradient_checkpointing": False,
            "initializer_range": f["initializer_range"],
            "layer_norm_epsilon": f["layer_norm_epsilon"],
            "model_type": "moss",
            "n_ctx": f["n_ctx"],
            "n_embd": f["n_embd"],
            "n_head": f["n_head"],
            "n_inner": f["n_inner"],
            "n_layer": f["n_layer"],
            "n_positions": f["n_positions"],
            "resid_pdrop": f["resid_pdrop"],
            "rotary_dim": f["rotary_dim"],
            "scale_attn_weights": True,
            "summary_activation": None,
            "summary_first_dropout": 0.1,
            "summary_proj_to_labels": True,
            "summary_type": "cls_index",
            "summary_use_proj": True,
            "tie_word_embeddings": False,
            "tokenizer_class": "GPT2Tokenizer",
            "torch_dtype": "float32",
            "transformers_version": "4.25.1",
            "use_cache": True,
            "vocab_size": f["vocab_size"],
        }
        return dict(sorted(d.items()))

    def check_moss_config(self, path):
        """config-moss.json, read as CodeGen fields, is the model that config.json describes."""
        with open(os.path.join(path, "config-moss.json")) as fh:
            moss = json.load(fh)
        codegen = CodeGenConfig.from_pretrained(path)
        for k in self.FIELDS:
            assert moss[k] == getattr(codegen, k), (k, moss[k], getattr(codegen, k))


# ---------------------------------------------------------------- remote-code families

def read_json(path):
    with open(path) as f:
        return json.load(f)


def save_ckpt(tensors, path):
    save_file({k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}, path,
              metadata={"format": "pt"})


def assert_roundtrip(fam, ref_sd):
    ck = fam.to_ckpt(ref_sd)
    back = fam.from_ckpt(ck)
    assert set(back) == set(ref_sd), (set(back) ^ set(ref_sd))
    for k in ref_sd:
        assert back[k].dtype == ref_sd[k].dtype and torch.equal(back[k], ref_sd[k]), k
    again = fam.to_ckpt(back)
    assert set(again) == set(ck)
    for k in ck:
        assert torch.equal(again[k], ck[k]), k
    return ck


class RemoteFamily(Family):
    ref_cls = None

    def ref_config(self, cfg_json):
        raise NotImplementedError

    def original_config(self, model):
        raise NotImplementedError

    def save(self, model, path):
        sd = {k: v for k, v in model.state_dict().items()}
        params = dict(model.named_parameters())
        assert set(sd) == set(params), set(sd) ^ set(params)   # no persistent buffers in the reference models
        ck = assert_roundtrip(self, {k: v.detach() for k, v in params.items()})
        cfg = self.original_config(model)
        write_json(cfg, os.path.join(path, "config.json"))
        ck.update(self.buffers_for(cfg))
        save_ckpt(ck, os.path.join(path, "model.safetensors"))

    def buffers_for(self, cfg):
        """checkpoint tensors that are not trained parameters (no grad., no adamw/final.)"""
        return {}

    def load(self, path):
        cfg_json = read_json(os.path.join(path, "config.json"))
        ck = load_file(os.path.join(path, "model.safetensors"))
        for k, v in self.buffers_for(cfg_json).items():
            assert torch.equal(ck.pop(k), v), k
        ref_cfg = self.ref_config(cfg_json)
        ref_cfg._attn_implementation = "eager"
        model = self.ref_cls(ref_cfg).to(torch.float32)
        missing, unexpected = model.load_state_dict(self.from_ckpt(ck), strict=True)
        assert not missing and not unexpected
        model.eval()
        return model


class InternLMFamily(RemoteFamily):
    """InternLM v1: LLaMA names, bias on q/k/v/o (config "bias": true), MHA, rope base hard-coded 10000."""
    name, seed, ref_cls = "internlm", 13, LlamaForCausalLM

    def build(self):
        tiny = dict(TINY, num_key_value_heads=TINY["num_attention_heads"])   # v1 is MHA: no num_key_value_heads
        cfg = LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, attention_bias=True,
                          mlp_bias=False, tie_word_embeddings=False, bos_token_id=BOS, eos_token_id=EOS,
                          pad_token_id=None, **tiny)
        cfg._attn_implementation = "eager"
        return self.build_seeded(LlamaForCausalLM, cfg)

    def original_config(self, model):
        c = model.config
        d = {
            "architectures": ["InternLMForCausalLM"],
            "bias": True,
            "bos_token_id": c.bos_token_id,
            "eos_token_id": c.eos_token_id,
            "hidden_act": c.hidden_act,
            "hidden_size": c.hidden_size,
            "initializer_range": c.initializer_range,
            "intermediate_size": c.intermediate_size,
            "max_position_embeddings": c.max_position_embeddings,
            "model_type": "internlm",
            "num_attention_heads": c.num_attention_heads,
            "num_hidden_layers": c.num_hidden_layers,
            "pad_token_id": 0,
            "rms_norm_eps": c.rms_norm_eps,
            "tie_word_embeddings": False,
            "torch_dtype": "float32",
            "transformers_version": transformers.__version__,
            "use_cache": True,
            "vocab_size": c.vocab_size,
        }
        return dict(sorted(d.items()))

    def ref_config(self, j):
        assert j["model_type"] == "internlm" and "num_key_value_heads" not in j
        # pad_token_id stays None: the InternLM remote code builds nn.Embedding(padding_idx=pad_token_id), which only
        # zeroes that row's gradient; CoLLiE's embedding (and collie-java's) has no padding row.
        return LlamaConfig(vocab_size=j["vocab_size"], hidden_size=j["hidden_size"],
                           intermediate_size=j["intermediate_size"], num_hidden_layers=j["num_hidden_layers"],
                           num_attention_heads=j["num_attention_heads"],
                           num_key_value_heads=j["num_attention_heads"],
                           head_dim=j["hidden_size"] // j["num_attention_heads"], hidden_act=j["hidden_act"],
                           max_position_embeddings=j["max_position_embeddings"], rms_norm_eps=j["rms_norm_eps"],
                           rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                           attention_bias=j["bias"], mlp_bias=False, tie_word_embeddings=j["tie_word_embeddings"],
                           initializer_range=j["initializer_range"], bos_token_id=j["bos_token_id"],
                           eos_token_id=j["eos_token_id"], pad_token_id=None)

    # names are LLaMA's: both directions are the identity
    def to_ckpt(self, tensors):
        return {k: v.contiguous() for k, v in tensors.items()}

    def from_ckpt(self, tensors):
        return dict(tensors)


# ---- InternLM2 <-> Llama

def internlm2_shape(cfg):
    h = cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"]
    d = cfg["hidden_size"] // h
    return h, kv, h // kv, d


def llama_to_internlm2(sd, cfg):
    """LlamaForCausalLM state dict -> InternLM2 checkpoint names/layout.

    wqkv rows = view(kv_heads, groups + 2, head_dim): for KV head j its `groups` query heads (j*groups ..
    j*groups + groups - 1), then key head j, then value head j."""
    h, kv, g, d = internlm2_shape(cfg)
    hid = cfg["hidden_size"]
    out = {}
    for k, v in sd.items():
        if k == "model.embed_tokens.weight":
            out["model.tok_embeddings.weight"] = v
        elif k == "lm_head.weight":
            out["output.weight"] = v
        elif k == "model.norm.weight":
            out["model.norm.weight"] = v
        elif k.startswith("model.layers."):
            i, rest = k[len("model.layers."):].split(".", 1)
            p = f"model.layers.{i}."
            if rest in ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"):
                if rest.startswith("self_attn.q_proj"):
                    q = v.reshape(kv, g, d, hid)
                    kk = sd[f"{p}self_attn.k_proj.weight"].reshape(kv, 1, d, hid)
                    vv = sd[f"{p}self_attn.v_proj.weight"].reshape(kv, 1, d, hid)
                    out[p + "attention.wqkv.weight"] = torch.cat([q, kk, vv], dim=1).reshape(kv * (g + 2) * d, hid)
            elif rest in ("self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"):
                if rest.startswith("self_attn.q_proj"):
                    q = v.reshape(kv, g, d)
                    kk = sd[f"{p}self_attn.k_proj.bias"].reshape(kv, 1, d)
                    vv = sd[f"{p}self_attn.v_proj.bias"].reshape(kv, 1, d)
                    out[p + "attention.wqkv.bias"] = torch.cat([q, kk, vv], dim=1).reshape(kv * (g + 2) * d)
            else:
                name = {"self_attn.o_proj.weight": "attention.wo.weight",
                        "self_attn.o_proj.bias": "attention.wo.bias",
                        "mlp.gate_proj.weight": "feed_forward.w1.weight",
                        "mlp.up_proj.weight": "feed_forward.w3.weight",
                        "mlp.down_proj.weight": "feed_forward.w2.weight",
                        "input_layernorm.weight": "attention_norm.weight",
                        "post_attention_layernorm.weight": "ffn_norm.weight"}[rest]
                out[p + name] = v
        else:
            raise KeyError(k)
    return {k: v.contiguous() for k, v in out.items()}


def internlm2_to_llama(ck, cfg):
    """InternLM2 checkpoint -> LlamaForCausalLM state dict (inverse of llama_to_internlm2)."""
    h, kv, g, d = internlm2_shape(cfg)
    hid = cfg["hidden_size"]
    out = {}
    for k, v in ck.items():
        if k == "model.tok_embeddings.weight":
            out["model.embed_tokens.weight"] = v
        elif k == "output.weight":
            out["lm_head.weight"] = v
        elif k == "model.norm.weight":
            out["model.norm.weight"] = v
        elif k.startswith("model.layers."):
            i, rest = k[len("model.layers."):].split(".", 1)
            p = f"model.layers.{i}."
            if rest == "attention.wqkv.weight":
                w = v.reshape(kv, g + 2, d, hid)
                out[p + "self_attn.q_proj.weight"] = w[:, :g].reshape(h * d, hid)
                out[p + "self_attn.k_proj.weight"] = w[:, g].reshape(kv * d, hid)
                out[p + "self_attn.v_proj.weight"] = w[:, g + 1].reshape(kv * d, hid)
            elif rest == "attention.wqkv.bias":
                b = v.reshape(kv, g + 2, d)
                out[p + "self_attn.q_proj.bias"] = b[:, :g].reshape(h * d)
                out[p + "self_attn.k_proj.bias"] = b[:, g].reshape(kv * d)
                out[p + "self_attn.v_proj.bias"] = b[:, g + 1].reshape(kv * d)
            else:
                name = {"attention.wo.weight": "self_attn.o_proj.weight",
                        "attention.wo.bias": "self_attn.o_proj.bias",
                        "feed_forward.w1.weight": "mlp.gate_proj.weight",
                        "feed_forward.w3.weight": "mlp.up_proj.weight",
                        "feed_forward.w2.weight": "mlp.down_proj.weight",
                        "attention_norm.weight": "input_layernorm.weight",
                        "ffn_norm.weight": "post_attention_layernorm.weight"}[rest]
                out[p + name] = v
        else:
            raise KeyError(k)
    return {k: v.contiguous() for k, v in out.items()}


def internlm2_inv_freq(cfg, seq_len):
    """inv_freq exactly as InternLM2's remote code (InternLM2DynamicNTKScalingRotaryEmbedding._set_cos_sin_cache):
    seq_len is a Python int, so the scaled base is computed in double precision before the float32 power."""
    dim = cfg["hidden_size"] // cfg["num_attention_heads"]
    base = cfg["rope_theta"]
    rs = cfg.get("rope_scaling")
    if rs is not None and rs["type"] == "dynamic" and seq_len > cfg["max_position_embeddings"]:
        factor = rs["factor"]
        base = base * ((factor * seq_len / cfg["max_position_embeddings"]) - (factor - 1)) ** (dim / (dim - 2))
    return 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))


# InternLM2 rope decision.  transformers' dynamic rope (_compute_dynamic_ntk_parameters + dynamic_rope_update)
# uses the same formula as InternLM2's remote code: for seq_len > max_position_embeddings,
#     base' = base * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2)),
# inv_freq = 1 / base' ** (arange(0, dim, 2) / dim), with seq_len = the current total length (kv length); for
# seq_len <= max_pos the plain base.  They agree (to float32 rounding of base': transformers computes it in
# float32 because seq_len is a tensor there, the remote code in double), so the parity fixture keeps
# rope_scaling {"type": "dynamic", "factor": 2.0} and LlamaConfig gets
#     rope_parameters {"rope_type": "dynamic", "factor": 2.0, "rope_theta": <rope_theta>}.
# Two behavioural differences that do not touch these fixtures (each is computed on a fresh model):
#  * transformers resets to the plain inv_freq when a later call is shorter than max_pos; the remote code
#    keeps the largest seq_len's frequencies (and its cos/sin cache) for every later, shorter call;
#  * with a KV cache both keep the keys rotated with the base of the step that produced them, so cached and
#    uncached greedy decoding can differ once the length passes max_position_embeddings (see generation.json).
INTERNLM2_ROPE_NOTE = (
    "transformers' LlamaForCausalLM dynamic rope (rope_type 'dynamic') and InternLM2's remote "
    "InternLM2DynamicNTKScalingRotaryEmbedding agree: both use base' = base * ((factor*seq_len/max_pos) - "
    "(factor-1)) ** (dim/(dim-2)) for seq_len > max_position_embeddings (seq_len = total length incl. cache), "
    "plain base otherwise; the fixture therefore keeps rope_scaling {type: dynamic, factor: 2.0} with "
    "max_position_embeddings 8, so SEQ 12 and generation to 20 tokens are scaled. reference.safetensors holds "
    "rope.inv_freq.seq8/seq12/seq20 computed by the remote formula. With a KV cache, keys keep the rotation of "
    "the step that produced them (both in transformers and in the remote code), while use_cache=False "
    "re-rotates every key with the current length's base.")


class InternLM2Family(RemoteFamily):
    name, seed, ref_cls = "internlm2", 14, LlamaForCausalLM
    MAX_POS = 8          # < SEQ 12 and < 20 generated tokens, so dynamic NTK scaling is active
    FACTOR = 2.0

    def build(self):
        tiny = dict(TINY, max_position_embeddings=self.MAX_POS)
        cfg = LlamaConfig(rope_parameters={"rope_type": "dynamic", "factor": self.FACTOR, "rope_theta": THETA},
                          attention_bias=False, mlp_bias=False, tie_word_embeddings=False,
                          bos_token_id=BOS, eos_token_id=EOS, pad_token_id=None, **tiny)
        cfg._attn_implementation = "eager"
        return self.build_seeded(LlamaForCausalLM, cfg)

    def original_config(self, model):
        c = model.config
        d = {
            "architectures": ["InternLM2ForCausalLM"],
            "attn_implementation": "eager",
            "bias": False,
            "bos_token_id": c.bos_token_id,
            "eos_token_id": c.eos_token_id,
            "hidden_act": c.hidden_act,
            "hidden_size": c.hidden_size,
            "initializer_range": c.initializer_range,
            "intermediate_size": c.intermediate_size,
            "max_position_embeddings": c.max_position_embeddings,
            "model_type": "internlm2",
            "num_attention_heads": c.num_attention_heads,
            "num_hidden_layers": c.num_hidden_layers,
            "num_key_value_heads": c.num_key_value_heads,
            "pad_token_id": 2,
            "rms_norm_eps": c.rms_norm_eps,
            "rope_scaling": {"type": "dynamic", "factor": self.FACTOR},
            "rope_theta": THETA,
            "tie_word_embeddings": False,
            "torch_dtype": "float32",
            "transformers_version": transformers.__version__,
            "use_cache": True,
            "vocab_size": c.vocab_size,
        }
        return dict(sorted(d.items()))

    def ref_config(self, j):
        assert j["model_type"] == "internlm2"
        rs = j.get("rope_scaling")
        rope = {"rope_type": "default", "rope_theta": float(j["rope_theta"])}
        if rs is not None:
            assert rs["type"] in ("dynamic", "linear")
            rope = {"rope_type": rs["type"], "factor": float(rs["factor"]), "rope_theta": float(j["rope_theta"])}
        # pad_token_id None: see InternLMFamily.ref_config (remote code: nn.Embedding(padding_idx=pad_token_id))
        return LlamaConfig(vocab_size=j["vocab_size"], hidden_size=j["hidden_size"],
                           intermediate_size=j["intermediate_size"], num_hidden_layers=j["num_hidden_layers"],
                           num_attention_heads=j["num_attention_heads"],
                           num_key_value_heads=j["num_key_value_heads"],
                           head_dim=j["hidden_size"] // j["num_attention_heads"], hidden_act=j["hidden_act"],
                           max_position_embeddings=j["max_position_embeddings"], rms_norm_eps=j["rms_norm_eps"],
                           rope_parameters=rope, attention_bias=j["bias"], mlp_bias=False,
                           tie_word_embeddings=j["tie_word_embeddings"], initializer_range=j["initializer_range"],
                           bos_token_id=j["bos_token_id"], eos_token_id=j["eos_token_id"], pad_token_id=None)

    def cfg_json(self):
        return {"num_attention_heads": TINY["num_attention_heads"], "num_key_value_heads": TINY["num_key_value_heads"],
                "hidden_size": TINY["hidden_size"]}

    def to_ckpt(self, tensors):
        return llama_to_internlm2(tensors, self.cfg_json())

    def from_ckpt(self, tensors):
        return internlm2_to_llama(tensors, self.cfg_json())

    def reference_extra(self, path):
        cfg = read_json(os.path.join(path, "config.json"))
        extra = {}
        hf_cfg = self.ref_config(cfg)
        for n in (8, 12, 20):
            remote = internlm2_inv_freq(cfg, n)
            hf, _ = ROPE_INIT_FUNCTIONS["dynamic"](hf_cfg, "cpu", seq_len=torch.tensor(n))
            diff = float((remote - hf.float()).abs().max())
            assert diff < 1e-6 * float(remote.abs().max()) + 1e-12, (n, remote, hf)
            extra[f"rope.inv_freq.seq{n}"] = f32(remote)
        return extra

    def remote_forward_ck(self, ck, cfg, input_ids):
        return internlm2_remote_forward(ck, cfg, input_ids)


def rms(x, w, eps):
    xf = x.to(torch.float32)
    return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps))


def internlm2_remote_forward(ck, cfg, input_ids):
    """Transcription of InternLM2ForCausalLM.forward (modeling_internlm2.py, eager, no cache) on the checkpoint."""
    h, kv, g, d = internlm2_shape(cfg)
    b, s = input_ids.shape
    eps = cfg["rms_norm_eps"]
    x = F.embedding(input_ids, ck["model.tok_embeddings.weight"])
    inv_freq = internlm2_inv_freq(cfg, s)                    # rotary_emb(value_states, seq_len=kv_seq_len)
    t = torch.arange(s, dtype=inv_freq.dtype)
    emb = torch.cat([torch.outer(t, inv_freq)] * 2, dim=-1)
    cos, sin = emb.cos(), emb.sin()

    def rotate_half(v):
        return torch.cat((-v[..., d // 2:], v[..., :d // 2]), dim=-1)

    mask = torch.full((s, s), torch.finfo(torch.float32).min).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rms(x, ck[p + "attention_norm.weight"], eps)
        qkv = F.linear(a, ck[p + "attention.wqkv.weight"], ck.get(p + "attention.wqkv.bias"))
        qkv = qkv.reshape(b, s, kv, g + 2, d)                     # "b q (h gs d) -> b q h gs d"
        q = qkv[..., :g, :].reshape(b, s, h, d).transpose(1, 2)   # "b q h gs d -> b q (h gs) d"
        k = qkv[..., -2, :].transpose(1, 2)
        v = qkv[..., -1, :].transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(g, dim=1)
        v = v.repeat_interleave(g, dim=1)
        w = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(d) + mask, dim=-1)
        o = (w @ v).transpose(1, 2).reshape(b, s, h * d)
        x = x + F.linear(o, ck[p + "attention.wo.weight"], ck.get(p + "attention.wo.bias"))
        a = rms(x, ck[p + "ffn_norm.weight"], eps)
        x = x + F.linear(F.silu(F.linear(a, ck[p + "feed_forward.w1.weight"])) *
                         F.linear(a, ck[p + "feed_forward.w3.weight"]), ck[p + "feed_forward.w2.weight"])
    x = rms(x, ck["model.norm.weight"], eps)
    return F.linear(x, ck["output.weight"])


# ---- ChatGLM3 <-> Glm

def chatglm_shape(cfg):
    h = cfg["num_attention_heads"]
    g = cfg["multi_query_group_num"] if cfg["multi_query_attention"] else h
    return h, g, cfg["kv_channels"]


def glm_to_chatglm(sd, cfg):
    """GlmForCausalLM state dict -> ChatGLM3 checkpoint names/layout.

    query_key_value rows = [q: heads*kv_channels | k: groups*kv_channels | v: groups*kv_channels] (weight and bias);
    dense_h_to_4h = Glm's gate_up_proj unchanged ([gate; up] along dim 0)."""
    h, g, d = chatglm_shape(cfg)
    out = {}
    for k, v in sd.items():
        if k == "model.embed_tokens.weight":
            out["transformer.embedding.word_embeddings.weight"] = v
        elif k == "lm_head.weight":
            out["transformer.output_layer.weight"] = v
        elif k == "model.norm.weight":
            out["transformer.encoder.final_layernorm.weight"] = v
        elif k.startswith("model.layers."):
            i, rest = k[len("model.layers."):].split(".", 1)
            p = f"model.layers.{i}."
            q = f"transformer.encoder.layers.{i}."
            if rest.startswith(("self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.")):
                kind = rest.rsplit(".", 1)[1]              # weight / bias
                if rest.startswith("self_attn.q_proj."):
                    parts = [sd[f"{p}self_attn.{n}_proj.{kind}"] for n in "qkv"]
                    assert [t.shape[0] for t in parts] == [h * d, g * d, g * d]
                    out[f"{q}self_attention.query_key_value.{kind}"] = torch.cat(parts, dim=0)
            else:
                name = {"self_attn.o_proj.weight": "self_attention.dense.weight",
                        "mlp.gate_up_proj.weight": "mlp.dense_h_to_4h.weight",
                        "mlp.down_proj.weight": "mlp.dense_4h_to_h.weight",
                        "input_layernorm.weight": "input_layernorm.weight",
                        "post_attention_layernorm.weight": "post_attention_layernorm.weight"}[rest]
                out[q + name] = v
        else:
            raise KeyError(k)
    return {k: v.contiguous() for k, v in out.items()}


def chatglm_to_glm(ck, cfg):
    """ChatGLM3 checkpoint (without the rotary_pos_emb.inv_freq buffer) -> GlmForCausalLM state dict."""
    h, g, d = chatglm_shape(cfg)
    out = {}
    for k, v in ck.items():
        if k == "transformer.embedding.word_embeddings.weight":
            out["model.embed_tokens.weight"] = v
        elif k == "transformer.output_layer.weight":
            out["lm_head.weight"] = v
        elif k == "transformer.encoder.final_layernorm.weight":
            out["model.norm.weight"] = v
        elif k.startswith("transformer.encoder.layers."):
            i, rest = k[len("transformer.encoder.layers."):].split(".", 1)
            p = f"model.layers.{i}."
            if rest.startswith("self_attention.query_key_value."):
                kind = rest.rsplit(".", 1)[1]
                qq, kk, vv = torch.split(v, [h * d, g * d, g * d], dim=0)
                out[f"{p}self_attn.q_proj.{kind}"] = qq
                out[f"{p}self_attn.k_proj.{kind}"] = kk
                out[f"{p}self_attn.v_proj.{kind}"] = vv
            else:
                name = {"self_attention.dense.weight": "self_attn.o_proj.weight",
                        "mlp.dense_h_to_4h.weight": "mlp.gate_up_proj.weight",
                        "mlp.dense_4h_to_h.weight": "mlp.down_proj.weight",
                        "input_layernorm.weight": "input_layernorm.weight",
                        "post_attention_layernorm.weight": "post_attention_layernorm.weight"}[rest]
                out[p + name] = v
        else:
            raise KeyError(k)
    return {k: v.contiguous() for k, v in out.items()}


def chatglm_inv_freq(cfg):
    """The persistent buffer transformer.rotary_pos_emb.inv_freq of ChatGLM2/3 checkpoints:
    RotaryEmbedding(dim = kv_channels // 2): 1 / 10000 ** (arange(0, dim, 2) / dim)  ->  kv_channels // 4 values.
    (The buffer does not include rope_ratio and the forward pass does not read it: forward_impl recomputes
    theta with base = 10000 * rope_ratio.)"""
    dim = cfg["kv_channels"] // 2
    return 1.0 / (10000 ** (torch.arange(0, dim, 2).to(dtype=torch.float32) / dim))


class ChatGLMFamily(RemoteFamily):
    name, seed, ref_cls = "chatglm", 15, GlmForCausalLM

    def build(self):
        cfg = GlmConfig(vocab_size=TINY["vocab_size"], hidden_size=32, intermediate_size=80, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=8, hidden_act="silu",
                        max_position_embeddings=64, rms_norm_eps=1e-5, initializer_range=0.02,
                        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
                        attention_bias=True, tie_word_embeddings=False, pad_token_id=None, bos_token_id=None,
                        eos_token_id=EOS)
        cfg._attn_implementation = "eager"
        return self.build_seeded(GlmForCausalLM, cfg)

    def original_config(self, model):
        c = model.config
        d = {
            "add_bias_linear": False,
            "add_qkv_bias": True,
            "apply_query_key_layer_scaling": True,
            "apply_residual_connection_post_layernorm": False,
            "architectures": ["ChatGLMModel"],
            "attention_dropout": 0.0,
            "attention_softmax_in_fp32": True,
            "bias_dropout_fusion": True,
            "eos_token_id": EOS,
            "ffn_hidden_size": c.intermediate_size,
            "fp32_residual_connection": False,
            "hidden_dropout": 0.0,
            "hidden_size": c.hidden_size,
            "kv_channels": c.head_dim,
            "layernorm_epsilon": c.rms_norm_eps,
            "model_type": "chatglm",
            "multi_query_attention": True,
            "multi_query_group_num": c.num_key_value_heads,
            "num_attention_heads": c.num_attention_heads,
            "num_layers": c.num_hidden_layers,
            "original_rope": True,
            "pad_token_id": 0,
            "padded_vocab_size": c.vocab_size,
            "post_layer_norm": True,
            "rmsnorm": True,
            "rope_ratio": 1,
            "seq_length": c.max_position_embeddings,
            "tie_word_embeddings": False,
            "torch_dtype": "float32",
            "transformers_version": transformers.__version__,
            "use_cache": True,
        }
        return dict(sorted(d.items()))

    def ref_config(self, j):
        assert j["model_type"] == "chatglm"
        # what GlmForCausalLM can express of ChatGLM3 (everything else must have these values)
        assert j["rmsnorm"] and j["post_layer_norm"] and j["original_rope"]
        assert not j["apply_residual_connection_post_layernorm"] and not j["add_bias_linear"]
        assert not j["fp32_residual_connection"] and j["hidden_dropout"] == 0 and j["attention_dropout"] == 0
        h, g, d = chatglm_shape(j)
        # pad_token_id None: ChatGLM3's embedding is a plain nn.Embedding (no padding row)
        return GlmConfig(vocab_size=j["padded_vocab_size"], hidden_size=j["hidden_size"],
                         intermediate_size=j["ffn_hidden_size"], num_hidden_layers=j["num_layers"],
                         num_attention_heads=h, num_key_value_heads=g, head_dim=d, hidden_act="silu",
                         max_position_embeddings=j["seq_length"], rms_norm_eps=j["layernorm_epsilon"],
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0 * j.get("rope_ratio", 1),
                                          "partial_rotary_factor": 0.5},
                         attention_bias=j["add_qkv_bias"], tie_word_embeddings=False, pad_token_id=None,
                         bos_token_id=None, eos_token_id=j["eos_token_id"])

    def cfg_json(self):
        return {"num_attention_heads": 4, "multi_query_group_num": 2, "multi_query_attention": True,
                "kv_channels": 8}

    def to_ckpt(self, tensors):
        return glm_to_chatglm(tensors, self.cfg_json())

    def from_ckpt(self, tensors):
        return chatglm_to_glm(tensors, self.cfg_json())

    def buffers_for(self, cfg):
        return {"transformer.rotary_pos_emb.inv_freq": chatglm_inv_freq(cfg)}

    def remote_forward_ck(self, ck, cfg, input_ids):
        return chatglm3_remote_forward(ck, cfg, input_ids)


def chatglm3_remote_forward(ck, cfg, input_ids):
    """Transcription of ChatGLM3's ChatGLMForConditionalGeneration.forward (modeling_chatglm.py: RotaryEmbedding,
    apply_rotary_pos_emb, SelfAttention with multi-query groups, CoreAttention with query-key layer scaling,
    swiglu MLP, GLMBlock, final RMSNorm, output_layer) on the checkpoint, no cache, [b, s, ...] layout."""
    h, g, d = chatglm_shape(cfg)
    b, s = input_ids.shape
    eps = cfg["layernorm_epsilon"]
    x = F.embedding(input_ids, ck["transformer.embedding.word_embeddings.weight"])
    # RotaryEmbedding(kv_channels // 2).forward_impl(seq_length, n_elem=dim, base=10000 * rope_ratio)
    n_elem = d // 2
    base = 10000 * cfg.get("rope_ratio", 1)
    theta = 1.0 / (base ** (torch.arange(0, n_elem, 2, dtype=torch.float) / n_elem))
    idx_theta = torch.outer(torch.arange(cfg["seq_length"], dtype=torch.float), theta).float()
    cache = torch.stack([torch.cos(idx_theta), torch.sin(idx_theta)], dim=-1)[:s]   # [s, n_elem/2, 2]

    def apply_rope(t):                                   # t: [b, heads, s, d]
        rot_dim = cache.shape[-2] * 2
        xr, xp = t[..., :rot_dim], t[..., rot_dim:]
        xs = xr.reshape(b, t.shape[1], s, rot_dim // 2, 2)
        c = cache.view(1, 1, s, rot_dim // 2, 2)
        out = torch.stack([xs[..., 0] * c[..., 0] - xs[..., 1] * c[..., 1],
                           xs[..., 1] * c[..., 0] + xs[..., 0] * c[..., 1]], -1).flatten(3)
        return torch.cat((out, xp), dim=-1)

    causal = torch.ones(s, s, dtype=torch.bool).tril_()
    for i in range(cfg["num_layers"]):
        p = f"transformer.encoder.layers.{i}."
        layer_number = i + 1
        a = rms(x, ck[p + "input_layernorm.weight"], eps)
        mixed = F.linear(a, ck[p + "self_attention.query_key_value.weight"],
                         ck.get(p + "self_attention.query_key_value.bias"))
        q, k, v = mixed.split([h * d, g * d, g * d], dim=-1)
        q = q.view(b, s, h, d).transpose(1, 2)
        k = k.view(b, s, g, d).transpose(1, 2)
        v = v.view(b, s, g, d).transpose(1, 2)
        q, k = apply_rope(q), apply_rope(k)
        k = k.unsqueeze(2).expand(-1, -1, h // g, -1, -1).reshape(b, h, s, d)
        v = v.unsqueeze(2).expand(-1, -1, h // g, -1, -1).reshape(b, h, s, d)
        norm_factor = math.sqrt(d)
        coeff = None
        if cfg["apply_query_key_layer_scaling"]:
            coeff = layer_number
            norm_factor *= coeff
        scores = (q @ k.transpose(2, 3)) * (1.0 / norm_factor)
        if coeff is not None:
            scores = scores * coeff
        scores = scores.masked_fill(~causal, float("-inf"))
        ctx = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, s, h * d)
        x = x + F.linear(ctx, ck[p + "self_attention.dense.weight"])
        a = rms(x, ck[p + "post_attention_layernorm.weight"], eps)
        inter = F.linear(a, ck[p + "mlp.dense_h_to_4h.weight"])
        g0, g1 = torch.chunk(inter, 2, dim=-1)
        x = x + F.linear(F.silu(g0) * g1, ck[p + "mlp.dense_4h_to_h.weight"])
    x = rms(x, ck["transformer.encoder.final_layernorm.weight"], eps)
    return F.linear(x, ck["transformer.output_layer.weight"]).float()


FAMILIES = [Qwen2Family(), Qwen2Bf16Family(), Qwen3Family(), MistralFamily(), InternLMFamily(), InternLM2Family(),
            ChatGLMFamily(), MossMoonFamily()]


# ---------------------------------------------------------------- reference / adamw / generation

def ckpt_param_names(fam, path):
    names = set(load_file(os.path.join(path, "model.safetensors")).keys())
    return names - set(fam.buffers_for(read_json(os.path.join(path, "config.json"))).keys()) \
        if isinstance(fam, RemoteFamily) else names


def write_reference(fam, model, path):
    input_ids, labels = reference_batch(BATCH_SEED, model.config.vocab_size)
    attention_mask = torch.ones_like(input_ids)
    tensors = {
        "input_ids": input_ids.contiguous(),
        "labels": labels.contiguous(),
        "attention_mask": attention_mask.contiguous(),
    }
    model.zero_grad(set_to_none=True)
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    tensors["logits"] = f32(out.logits)
    tensors["loss"] = f32(out.loss).reshape(1)
    out.loss.backward()
    grads = fam.to_ckpt({name: f32(p.grad) for name, p in model.named_parameters()})
    assert set(grads) == ckpt_param_names(fam, path), set(grads) ^ ckpt_param_names(fam, path)
    for name, g in grads.items():
        tensors["grad." + name] = f32(g)
    model.zero_grad(set_to_none=True)
    if hasattr(fam, "reference_extra"):
        tensors.update(fam.reference_extra(path))
    meta = versions()
    meta.update({"family": fam.name, "batch_seed": str(BATCH_SEED), "loss": repr(float(out.loss.detach()))})
    save_st(tensors, os.path.join(path, "reference.safetensors"), meta)
    return float(out.loss.detach()), tensors


def write_adamw(fam, path):
    model = fam.load(path)
    model.train()
    gen = torch.Generator().manual_seed(ADAMW_SEED)
    batches = [torch.randint(0, model.config.vocab_size, (BATCH, SEQ), generator=gen, dtype=torch.int64)
               for _ in range(3)]
    opt = torch.optim.AdamW(model.parameters(), **ADAMW)
    tensors, losses = {}, []
    for k, ids in enumerate(batches):
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        tensors[f"adamw/batch{k}.input_ids"] = ids.contiguous()
        tensors[f"adamw/step{k}.loss"] = torch.tensor([float(loss.detach())], dtype=torch.float32)
    tensors["adamw/losses"] = torch.tensor(losses, dtype=torch.float32)
    final = fam.to_ckpt({name: f32(p) for name, p in model.named_parameters()})
    assert set(final) == ckpt_param_names(fam, path)
    for name, p in final.items():
        tensors["adamw/final." + name] = f32(p)
    meta = versions()
    meta.update({"family": fam.name, "optimizer": "torch.optim.AdamW", "lr": "0.01", "betas": "0.9,0.999",
                 "eps": repr(ADAMW["eps"]), "weight_decay": "0.01", "batch_seed": str(ADAMW_SEED),
                 "losses": json.dumps(losses)})
    save_st(tensors, os.path.join(path, "adamw_reference.safetensors"), meta)
    with open(os.path.join(path, "adamw_rows.jsonl"), "w") as f:
        for ids in batches:
            for row in ids.tolist():
                f.write(json.dumps({"tokens": row}) + "\n")
    return losses


def greedy(model, prompt, use_cache):
    gc = GenerationConfig(do_sample=False, max_new_tokens=NEW_TOKENS, eos_token_id=None, pad_token_id=None,
                          bos_token_id=None, use_cache=use_cache, return_dict_in_generate=True, output_logits=True)
    out = model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=gc)
    seq = out.sequences
    assert seq.shape == (1, PROMPT_LEN + NEW_TOKENS), seq.shape    # EOS disabled: all 14 tokens come out
    return seq[0].tolist(), [f32(l[0]) for l in out.logits]


def f32_list(t):
    """float32 values as the shortest decimal that reads back (as float32) to the same value"""
    return [float(f"{v:.9g}") for v in t.tolist()]


def write_compact_json(d, path):
    """one top-level key per line, each value on one line (the step logits would be ~1400 lines with indent=2)"""
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in d.items()]
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def write_generation(fam, path):
    gen = torch.Generator().manual_seed(PROMPT_SEED)
    model = fam.load(path)
    prompt = torch.randint(0, model.config.vocab_size, (1, PROMPT_LEN), generator=gen, dtype=torch.int64)
    with torch.no_grad():
        cached, logits_c = greedy(model, prompt, True)
        uncached, logits_n = greedy(fam.load(path), prompt, False)
    assert cached[:PROMPT_LEN] == prompt[0].tolist()
    max_diff = max(float((a - b).abs().max()) for a, b in zip(logits_c, logits_n))
    # internlm2 (dynamic NTK): the cached keys keep the rotation of the step that produced them, so the step
    # logits differ from the uncached run by ~1e-4; the greedy tokens still agree for this fixture
    assert cached == uncached, (fam.name, cached, uncached)
    d = {
        "prompt": prompt[0].tolist(),
        "output": cached,
        "output_no_cache": uncached,
        "max_new_tokens": NEW_TOKENS,
        "do_sample": False,
        "eos_token_id": None,
        "prompt_seed": PROMPT_SEED,
        "max_abs_step_logit_diff_cache_vs_no_cache": max_diff,
    }
    if isinstance(fam, InternLM2Family):
        d["rope_note"] = INTERNLM2_ROPE_NOTE
    d.update(versions())
    # raw next-token logits of generation step t (t = 0..13, predicting output[6 + t]) with the KV cache
    d["step_logits"] = [f32_list(l) for l in logits_c]
    if isinstance(fam, InternLM2Family):
        d["step_logits_no_cache"] = [f32_list(l) for l in logits_n]
    write_compact_json(d, os.path.join(path, "generation.json"))
    return cached, max_diff


def check_remote(fam, path, ref):
    """The transcribed remote-code forward gives the reference logits, and its gradients with respect to the
    checkpoint tensors themselves (fused layouts included) are the stored grad.* tensors."""
    ck = load_file(os.path.join(path, "model.safetensors"))
    for t in ck.values():
        t.requires_grad_(True)
    logits = fam.remote_forward_ck(ck, read_json(os.path.join(path, "config.json")), ref["input_ids"])
    labels = ref["labels"]
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
    loss.backward()
    logit_diff = float((logits.detach() - ref["logits"]).abs().max())
    assert logit_diff < 1e-5, (fam.name, logit_diff)
    assert abs(float(loss.detach()) - float(ref["loss"])) < 1e-6, (fam.name, float(loss.detach()), float(ref["loss"]))
    grad_diff = 0.0
    for name, t in ck.items():
        if ("grad." + name) not in ref:
            assert t.grad is None, name          # the rotary inv_freq buffer
            continue
        g = ref["grad." + name]
        grad_diff = max(grad_diff, float((t.grad - g).abs().max() / g.abs().max()))
    assert grad_diff < 1e-4, (fam.name, grad_diff)
    return logit_diff, grad_diff


def check_reload(fam, path, ref):
    """A fresh load of the directory reproduces the reference logits bit-exactly."""
    model = fam.load(path)
    with torch.no_grad():
        logits = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).logits
    assert torch.equal(f32(logits), ref["logits"]), fam.name
    # and the files load back with plain safetensors
    for fn in sorted(os.listdir(path)):
        if fn.endswith(".safetensors"):
            with safe_open(os.path.join(path, fn), framework="pt") as f:
                for k in f.keys():
                    f.get_tensor(k)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    try:
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
    except Exception:
        pass

    summary = {}
    built = {}
    for fam in FAMILIES:
        path = os.path.join(out, fam.name)
        reset_dir(path)
        if isinstance(fam, Qwen2Bf16Family):
            model = built["qwen2"]          # the very same weights as qwen2/
        else:
            model, _touched = fam.build()
            built[fam.name] = model
        fam.save(model, path)

        reloaded = fam.load(path)
        if not isinstance(fam, Qwen2Bf16Family):
            src = dict(model.named_parameters())
            for n, p in reloaded.named_parameters():
                assert torch.equal(p, src[n]), (fam.name, n)
        loss, ref = write_reference(fam, reloaded, path)
        check_reload(fam, path, ref)
        info = {"loss": loss}
        if hasattr(fam, "remote_forward_ck"):
            lg, gr = check_remote(fam, path, ref)
            info["remote_code_max_abs_logit_diff"] = lg
            info["remote_code_max_rel_grad_diff"] = gr
        if isinstance(fam, MossMoonFamily):
            fam.check_moss_config(path)
        if fam.adamw:
            info["adamw_losses"] = write_adamw(fam, path)
        if fam.generation:
            seq, diff = write_generation(fam, path)
            info["generation"] = seq
            info["generation_max_step_logit_diff_cache_vs_no_cache"] = diff
        summary[fam.name] = info

    total = 0
    for fam in FAMILIES:
        path = os.path.join(out, fam.name)
        size = 0
        for fn in sorted(os.listdir(path)):
            p = os.path.join(path, fn)
            size += os.path.getsize(p)
            print(f"  {fam.name + '/' + fn:48s} {os.path.getsize(p):>9d}")
        total += size
        info = summary[fam.name]
        print(f"{fam.name:12s} reference loss {info['loss']!r}  bytes {size}")
        for k, v in info.items():
            if k != "loss":
                print(f"{'':12s} {k}: {v}")
    print(f"total bytes: {total}")


if __name__ == "__main__":
    main()
