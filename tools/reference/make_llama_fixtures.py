#!/usr/bin/env python3
"""Generate the HuggingFace/PyTorch reference fixtures used by collie-models tests.

Run (from the repository root; the script is deterministic and re-runnable, it
rewrites every file it owns):

    /work/pyref/bin/python tools/reference/make_llama_fixtures.py
    # or:  python tools/reference/make_llama_fixtures.py --out collie-models/src/test/resources/fixtures

Needs torch, transformers (>= 5), safetensors.  Produced with torch 2.13.0+cpu,
transformers 5.18.0, safetensors 0.8.0 (the exact versions are also stored in the
safetensors metadata of every reference file and in fixtures/README.md).

What it writes (under --out, default collie-models/src/test/resources/fixtures):

  tiny-llama/                  random LlamaForCausalLM (GQA, rope_theta 50000, untied), fp32,
                               config.json + generation_config.json + model.safetensors
  tiny-llama/reference.safetensors
                               fixed batch, logits, loss, hidden states and grad.<param> of every parameter
  tiny-llama/adamw_reference.safetensors
                               3 AdamW steps (eps 1e-3): batches, per-step losses, final weights
  tiny-llama/adamw_rows.jsonl  the same 3 batches, one {"tokens":[...]} line per row
  tiny-llama-tied/             same shape, tie_word_embeddings=True, other seed (+ reference.safetensors)
  tiny-llama-sharded/          the tiny-llama weights saved with a small max_shard_size
                               (model.safetensors.index.json + model-0000k-of-0000n.safetensors)
  config-layouts/config-v4.json, config-v5.json, rope_inv_freq.safetensors

All computation runs on CPU in float32 with the eager attention implementation and a
single thread so the numbers are bit-reproducible on one machine (and reproducible to
~1e-7 elsewhere).
"""

import argparse
import json
import os
import shutil
import tempfile

import torch
import transformers
import safetensors
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "collie-models", "src", "test", "resources", "fixtures")

TINY = dict(
    vocab_size=96,
    hidden_size=32,
    intermediate_size=80,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    rope_theta=50000.0,
    rms_norm_eps=1e-5,
    max_position_embeddings=64,
    attention_bias=False,
    mlp_bias=False,
    initializer_range=0.02,
)

# eps 1e-3, above the gradients' fp32 summation-order noise: collie's fp32 runs are compared with these weights after
# 3 steps, and with eps 1e-8 an element whose gradient is within that noise of zero moves by up to lr either way,
# depending on the CPU's kernels (docs/design-notes.md, "Comparisons that hold on any CPU"); the rule with eps 1e-8
# is checked on the same gradients (make_peft_fixtures.py)
ADAMW = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-3, weight_decay=0.01)

BATCH, SEQ = 2, 12


def versions():
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "generator": "tools/reference/make_llama_fixtures.py",
    }


def tiny_config(tied):
    cfg = LlamaConfig(tie_word_embeddings=tied, **TINY)
    cfg._attn_implementation = "eager"
    return cfg


def build_tiny(seed, tied):
    """Random tiny llama; every RMSNorm weight perturbed to 1 + 0.1*randn."""
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_config(tied)).to(torch.float32)
    gen = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
    model.eval()  # no dropout anyway (attention_dropout 0.0), but be explicit
    return model


def load_eager(path):
    return LlamaForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")


def save_model(model, path, **kw):
    if os.path.isdir(path):
        shutil.rmtree(path)
    model.save_pretrained(path, safe_serialization=True, **kw)


def save_st(tensors, path, meta):
    """safetensors keeps metadata in a hash map whose order varies run to run; one key keeps the bytes stable."""
    save_file(tensors, path, metadata={"info": json.dumps(meta, sort_keys=True)})


def f32(t):
    return t.detach().to(torch.float32).contiguous().clone()


def hidden_state_hooks(model, store):
    """Capture embeddings, each decoder layer output and the final-norm output."""
    handles = []

    def grab(key):
        def hook(_mod, _inp, out):
            store[key] = f32(out[0] if isinstance(out, tuple) else out)
        return hook

    handles.append(model.model.embed_tokens.register_forward_hook(grab("hidden.embed")))
    for i, layer in enumerate(model.model.layers):
        handles.append(layer.register_forward_hook(grab(f"hidden.layer{i}")))
    handles.append(model.model.norm.register_forward_hook(grab("hidden.final_norm")))
    return handles


def reference_batch(seed):
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, TINY["vocab_size"], (BATCH, SEQ), generator=gen, dtype=torch.int64)
    labels = input_ids.clone()
    labels[1, :3] = -100          # first 3 tokens of row 1 ignored
    labels[0, 7] = -100           # and one position in the middle of row 0
    return input_ids, labels


def write_reference(model, path, seed, with_grads):
    input_ids, labels = reference_batch(seed)
    attention_mask = torch.ones_like(input_ids)
    tensors = {
        "input_ids": input_ids.contiguous(),
        "labels": labels.contiguous(),
        "attention_mask": attention_mask.contiguous(),
    }
    hidden = {}
    handles = hidden_state_hooks(model, hidden)
    model.zero_grad(set_to_none=True)
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    for h in handles:
        h.remove()
    tensors["logits"] = f32(out.logits)
    tensors["loss"] = f32(out.loss).reshape(1)
    tensors.update(hidden)
    if with_grads:
        out.loss.backward()
        for name, p in model.named_parameters():
            tensors["grad." + name] = f32(p.grad)
    model.zero_grad(set_to_none=True)
    meta = versions()
    meta.update({"batch_seed": str(seed), "loss": repr(float(out.loss.detach()))})
    save_st(tensors, path, meta)
    return float(out.loss.detach()), tensors


def write_adamw(model_dir, out_path, rows_path, seed):
    model = load_eager(model_dir)
    model.train()
    gen = torch.Generator().manual_seed(seed)
    batches = [torch.randint(0, TINY["vocab_size"], (BATCH, SEQ), generator=gen, dtype=torch.int64)
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
    for name, p in model.named_parameters():
        tensors["adamw/final." + name] = f32(p)
    meta = versions()
    meta.update({"optimizer": "torch.optim.AdamW", "lr": "0.01", "betas": "0.9,0.999", "eps": repr(ADAMW["eps"]),
                 "weight_decay": "0.01", "batch_seed": str(seed),
                 "losses": json.dumps(losses)})
    save_st(tensors, out_path, meta)
    with open(rows_path, "w") as f:
        for ids in batches:
            for row in ids.tolist():
                f.write(json.dumps({"tokens": row}) + "\n")
    return losses


# ---------------------------------------------------------------- config layouts

LAYOUT_MODEL = dict(
    # Llama-3.2-1B-shaped model (head_dim 64) with the Llama-3.1 rope scaling numbers.
    vocab_size=128256,
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=64,
    hidden_act="silu",
    max_position_embeddings=131072,
    initializer_range=0.02,
    rms_norm_eps=1e-5,
    use_cache=True,
    bos_token_id=128000,
    eos_token_id=128001,
    pretraining_tp=1,
    tie_word_embeddings=True,
    attention_bias=False,
    attention_dropout=0.0,
    mlp_bias=False,
)
LAYOUT_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}
LAYOUT_THETA = 500000.0


def config_v4_dict():
    """config.json the way transformers 4.4x wrote it (top-level rope_theta + rope_scaling, torch_dtype)."""
    d = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    d.update(LAYOUT_MODEL)
    d["rope_theta"] = LAYOUT_THETA
    d["rope_scaling"] = dict(LAYOUT_ROPE)
    d["torch_dtype"] = "bfloat16"
    d["transformers_version"] = "4.46.0"
    return dict(sorted(d.items()))


def write_config_layouts(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    v4 = config_v4_dict()
    with open(os.path.join(out_dir, "config-v4.json"), "w") as f:
        json.dump(v4, f, indent=2)
        f.write("\n")

    # What transformers 5 itself writes for the same model.
    rope = dict(LAYOUT_ROPE)
    rope["rope_theta"] = LAYOUT_THETA
    cfg5 = LlamaConfig(rope_parameters=rope, **LAYOUT_MODEL)
    cfg5.architectures = ["LlamaForCausalLM"]
    cfg5.dtype = torch.bfloat16
    with tempfile.TemporaryDirectory() as tmp:
        cfg5.save_pretrained(tmp)
        shutil.copyfile(os.path.join(tmp, "config.json"), os.path.join(out_dir, "config-v5.json"))

    # Both layouts must mean the same rope to transformers 5.
    loaded4 = LlamaConfig.from_pretrained(os.path.join(out_dir, "config-v4.json"))
    loaded5 = LlamaConfig.from_pretrained(os.path.join(out_dir, "config-v5.json"))
    assert loaded4.rope_parameters == loaded5.rope_parameters, (loaded4.rope_parameters, loaded5.rope_parameters)

    tensors = {}

    def rope_of(cfg, prefix, positions):
        emb = LlamaRotaryEmbedding(cfg)
        tensors[prefix + ".inv_freq"] = f32(emb.inv_freq)
        tensors[prefix + ".attention_scaling"] = torch.tensor([float(emb.attention_scaling)], dtype=torch.float32)
        pos = torch.arange(positions, dtype=torch.int64)[None, :]
        x = torch.zeros(1, positions, cfg.head_dim, dtype=torch.float32)
        cos, sin = emb(x, pos)
        tensors[prefix + ".cos"] = f32(cos[0])
        tensors[prefix + ".sin"] = f32(sin[0])
        return emb.inv_freq

    f4 = rope_of(loaded4, "llama3_theta500000_hd64", 16)
    f5 = LlamaRotaryEmbedding(loaded5).inv_freq
    assert torch.equal(f4, f5)
    plain = LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": LAYOUT_THETA}, **LAYOUT_MODEL)
    rope_of(plain, "default_theta500000_hd64", 16)
    rope_of(tiny_config(False), "default_theta50000_hd8", SEQ)
    meta = versions()
    meta["note"] = ("<prefix>.inv_freq [head_dim/2]; <prefix>.cos/.sin [positions, head_dim] for positions 0.. "
                    "(HF layout: cat(freqs, freqs)); attention_scaling [1]")
    save_st(tensors, os.path.join(out_dir, "rope_inv_freq.safetensors"), meta)
    return {k: tuple(v.shape) for k, v in tensors.items()}


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

    # 1. tiny-llama (untied, seed 0)
    tiny_dir = os.path.join(out, "tiny-llama")
    model = build_tiny(seed=0, tied=False)
    save_model(model, tiny_dir)

    # sharded copy of exactly the same weights
    sharded_dir = os.path.join(out, "tiny-llama-sharded")
    save_model(model, sharded_dir, max_shard_size="40KB")

    # tied copy (seed 1)
    tied_dir = os.path.join(out, "tiny-llama-tied")
    tied = build_tiny(seed=1, tied=True)
    save_model(tied, tied_dir)

    # 2. reference forward/backward, computed from the *reloaded* checkpoint
    reloaded = load_eager(tiny_dir)
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), reloaded.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    loss, ref = write_reference(reloaded, os.path.join(tiny_dir, "reference.safetensors"), seed=1234,
                                with_grads=True)
    sh = load_eager(sharded_dir)
    with torch.no_grad():
        ids = ref["input_ids"]
        assert torch.equal(sh(input_ids=ids).logits, ref["logits"]), "sharded copy differs"
    tied_loss, _ = write_reference(load_eager(tied_dir), os.path.join(tied_dir, "reference.safetensors"),
                                   seed=1234, with_grads=True)

    # 3./4. AdamW parity
    losses = write_adamw(tiny_dir, os.path.join(tiny_dir, "adamw_reference.safetensors"),
                         os.path.join(tiny_dir, "adamw_rows.jsonl"), seed=4321)

    # 6. config layouts
    rope_shapes = write_config_layouts(os.path.join(out, "config-layouts"))

    print(f"tiny-llama reference loss      : {loss!r}")
    print(f"tiny-llama-tied reference loss : {tied_loss!r}")
    print(f"adamw step losses              : {losses!r}")
    print("rope tensors:", rope_shapes)
    total = 0
    for root, _dirs, files in os.walk(out):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            total += os.path.getsize(p)
            print(f"  {os.path.relpath(p, out):60s} {os.path.getsize(p):>9d}")
    print(f"total bytes: {total}")


if __name__ == "__main__":
    main()
