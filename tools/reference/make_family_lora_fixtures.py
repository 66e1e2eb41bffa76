#!/usr/bin/env python3
"""Generate LoRA reference fixtures on the tiny model-family checkpoints (qwen2, internlm2, chatglm).

Run from the repository root, after make_family_fixtures.py (it reads that script's directories and
rewrites only their lora/ subdirectories; deterministic, byte-identical on re-runs):

    /work/pyref/bin/python tools/reference/make_family_lora_fixtures.py

Needs torch, transformers (>= 5), peft, safetensors.  Produced with torch 2.13.0+cpu, transformers 5.18.0,
peft 0.21.0, safetensors 0.8.0 (also recorded in the metadata of every lora/reference.safetensors).

What it writes, for family in qwen2, internlm2, chatglm, under
collie-models/src/test/resources/fixtures/families/<family>/lora/:

  adapter_config.json + adapter_model.safetensors
        peft's own save_pretrained output (names "base_model.model.<module>.lora_A.weight" / ".lora_B.weight"):
        r=4, lora_alpha=8 (scaling 2), lora_dropout=0, task_type CAUSAL_LM, base_model_name_or_path = <family>,
        target_modules by the names of the family's checkpoint:
            qwen2      ["q_proj", "v_proj"]            (peft's default for qwen2)
            internlm2  ["wo", "wqkv"]                  (attention.wqkv fused [kv, groups + 2, head_dim] rows)
            chatglm    ["dense", "query_key_value"]    (matches self_attention.dense only, not dense_h_to_4h /
                                                        dense_4h_to_h: peft matches whole name components)
        lora_A as peft initialises it (kaiming_uniform_(a=sqrt(5)) after torch.manual_seed(SEED[family])),
        lora_B = 0.1 * randn (torch.Generator seed SEED[family] + 1, in named_parameters order) so that the
        adapter changes the logits.
  reference.safetensors
        input_ids, labels, attention_mask   the family's reference.safetensors batch (copied from there)
        logits [2, 12, 96], loss [1]        base + adapter, eval mode, HF causal-LM loss with those labels
        grad.<name>                         gradient of every LoRA parameter at the initial adapter
        merged.<checkpoint weight name>     base weight + (B @ A) * scaling of every targeted linear, in the
                                            checkpoint's own (fused) layout (what peft's merge_and_unload gives)
        init.<name>                         the adapter before training (= adapter_model.safetensors)
        train.batch{0,1,2}                  [2, 12] (generator seed 4321, as make_peft_fixtures.py); labels = ids
        losses [3]                          loss of each step before its update (train mode; no dropout anywhere)
        grad{k}.<name>, after{k}.<name>     gradients of step k and the adapter after step k's torch.optim.AdamW
                                            (lr 1e-2, betas 0.9/0.999, eps 1e-8, weight_decay 0.01, adapter only)
        <name> = collie's name = peft's name without "base_model.model." and without the adapter name "default",
        e.g. transformer.encoder.layers.0.self_attention.query_key_value.lora_A.weight.

How the numbers are computed.
  qwen2: peft itself, get_peft_model(Qwen2ForCausalLM.from_pretrained(qwen2/), LoraConfig(...)).
  internlm2, chatglm: peft cannot wrap the remote-code models offline, so the LoRA math is done explicitly on the
  fused checkpoint tensors, as peft's LoRA Linear does it (y = x W^T + b + scaling * (x A^T) B^T): A and B are
  leaf tensors, the forward forms the fused weight W + (B @ A) * scaling in the checkpoint's layout and maps it
  with make_family_fixtures.py's from_ckpt (internlm2 -> LlamaForCausalLM, chatglm -> GlmForCausalLM), then runs
  the reference model with torch.func.functional_call; the gradients of A and B come out of autograd in the fused
  layout.  A and B live in a peft-wrapped *skeleton* (an nn.Module tree with the checkpoint's module names and
  tensors), so peft chooses the targeted modules, initialises lora_A and writes the adapter files.
  Checks (all asserted):
    * qwen2: the explicit method on a plain Qwen2ForCausalLM reproduces peft's logits, loss and gradients
      (reference batch and every training step) to <= 1e-6, and its merged weights equal peft's merge_and_unload;
    * internlm2, chatglm: with B = 0 the explicit method gives the family's reference logits bit-exactly;
      the transcribed remote-code forward (make_family_fixtures.py) on the merged checkpoint tensors gives the
      same logits (1e-5) and, through autograd, the same A/B gradients (1e-4 relative);
    * every adapter directory reloads with peft (PeftModel.from_pretrained on the base model / skeleton) and gives
      the stored logits.
"""

import json
import math
import os
import shutil
import sys

import torch
import torch.nn.functional as F
from torch import nn
import transformers
import safetensors
import peft
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from peft import LoraConfig, PeftModel, TaskType, get_peft_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_family_fixtures as mff  # noqa: E402  (mapping functions, family loaders, remote-code forwards)

OUT = mff.DEFAULT_OUT
GENERATOR = "tools/reference/make_family_lora_fixtures.py"
R, ALPHA = 4, 8
SCALING = ALPHA / R
ADAMW = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
TRAIN_SEED = 4321
TARGETS = {"qwen2": ["q_proj", "v_proj"], "internlm2": ["wqkv", "wo"], "chatglm": ["query_key_value", "dense"]}
SEEDS = {"qwen2": 300, "internlm2": 301, "chatglm": 302}
# the modules each target list must select (per layer), checked against what peft actually wrapped
EXPECTED = {"qwen2": ["self_attn.q_proj", "self_attn.v_proj"],
            "internlm2": ["attention.wqkv", "attention.wo"],
            "chatglm": ["self_attention.query_key_value", "self_attention.dense"]}
LAYER_PREFIX = {"qwen2": "model.layers.", "internlm2": "model.layers.", "chatglm": "transformer.encoder.layers."}


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "safetensors": safetensors.__version__, "generator": GENERATOR}


def f32(t):
    return t.detach().to(torch.float32).contiguous().clone()


def collie_name(peft_name):
    n = peft_name.replace(".default.", ".")
    if n.startswith("base_model.model."):
        n = n[len("base_model.model."):]
    return n


def lora_leaves(pm):
    """{collie name: parameter} of the adapter, in named_parameters order"""
    return {collie_name(n): p for n, p in pm.named_parameters() if p.requires_grad}


def lora_pairs(named):
    """{module path: (A, B)} from {collie name: tensor}"""
    out = {}
    for n, t in named.items():
        for part, i in ((".lora_A.weight", 0), (".lora_B.weight", 1)):
            if n.endswith(part):
                out.setdefault(n[:-len(part)], [None, None])[i] = t
    assert all(a is not None and b is not None for a, b in out.values())
    return {k: tuple(v) for k, v in out.items()}


def train_batches(vocab):
    gen = torch.Generator().manual_seed(TRAIN_SEED)
    return [torch.randint(0, vocab, (2, 12), generator=gen, dtype=torch.int64) for _ in range(3)]


def max_abs(a, b):
    return float((a.detach() - b.detach()).abs().max())


# ---------------------------------------------------------------- the explicit LoRA forward

def merged_ckpt(base_ck, pairs):
    """checkpoint tensors with every targeted weight replaced by W + (B @ A) * scaling (peft's get_delta_weight)"""
    ck = dict(base_ck)
    for path, (a, b) in pairs.items():
        ck[path + ".weight"] = base_ck[path + ".weight"] + (b @ a) * SCALING
    return ck


def explicit(fam, ref_model, base_ck, pairs, ids, labels=None):
    """the reference model run on the mapped merged weights; differentiable in A and B"""
    sd = fam.from_ckpt(merged_ckpt(base_ck, pairs))
    kw = dict(input_ids=ids, attention_mask=torch.ones_like(ids))
    if labels is not None:
        kw["labels"] = labels
    return torch.func.functional_call(ref_model, sd, args=(), kwargs=kw, strict=False)


def explicit_grads(fam, ref_model, base_ck, named, ids, labels):
    """(output, {name: grad}) of the explicit method at the adapter values `named`, on fresh leaf copies"""
    leaves = {n: t.detach().clone().requires_grad_(True) for n, t in named.items()}
    out = explicit(fam, ref_model, base_ck, lora_pairs(leaves), ids, labels)
    out.loss.backward()
    return out, {n: t.grad for n, t in leaves.items()}


# ---------------------------------------------------------------- skeleton for the remote-code families

class Holder(nn.Module):
    pass


class Root(Holder):
    """the skeleton's top module; PeftModelForCausalLM (task_type CAUSAL_LM) wants this attribute"""

    def prepare_inputs_for_generation(self, *args, **kwargs):
        raise NotImplementedError("a skeleton: it holds the tensors, it has no forward")


def skeleton(base_ck):
    """an nn.Module tree with the checkpoint's module names: 2-D weights as nn.Linear (embeddings as nn.Embedding),
    anything else as plain parameters; peft wraps it to choose, initialise and save the LoRA modules"""
    groups = {}
    for name, t in base_ck.items():
        path, pname = name.rsplit(".", 1)
        groups.setdefault(path, {})[pname] = t
    root = Root()
    for path, ps in groups.items():
        w = ps.get("weight")
        if w is not None and w.dim() == 2 and "embed" in path:
            mod = nn.Embedding(w.shape[0], w.shape[1])
        elif w is not None and w.dim() == 2:
            mod = nn.Linear(w.shape[1], w.shape[0], bias="bias" in ps)
        else:
            mod = Holder()
            for pname, t in ps.items():
                mod.register_parameter(pname, nn.Parameter(torch.empty_like(t)))
        with torch.no_grad():
            for pname, t in ps.items():
                getattr(mod, pname).copy_(t)
        parent = root
        parts = path.split(".")
        for p in parts[:-1]:
            if not hasattr(parent, p):
                parent.add_module(p, Holder())
            parent = getattr(parent, p)
        parent.add_module(parts[-1], mod)
    for n, t in root.named_parameters():
        assert torch.equal(t, base_ck[n]), n
    assert set(dict(root.named_parameters())) == set(base_ck)
    return root


def lora_config(family):
    return LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=list(TARGETS[family]),
                      task_type=TaskType.CAUSAL_LM)


def set_b(pm, seed):
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def check_targets(family, pm, n_layers):
    got = sorted({collie_name(n).rsplit(".lora_", 1)[0] for n, _ in pm.named_parameters() if ".lora_" in n})
    want = sorted(f"{LAYER_PREFIX[family]}{i}.{m}" for i in range(n_layers) for m in EXPECTED[family])
    assert got == want, (family, got, want)


def save_adapter(family, pm, out_dir):
    cfg = pm.peft_config["default"]
    cfg.base_model_name_or_path = family
    cfg.target_modules = sorted(cfg.target_modules)   # a set in memory: written sorted
    pm.save_pretrained(out_dir, save_embedding_layers=False)
    readme = os.path.join(out_dir, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    with open(os.path.join(out_dir, "adapter_config.json")) as f:
        j = json.load(f)
    assert j["task_type"] == "CAUSAL_LM" and j["auto_mapping"] is None and j["r"] == R, j
    assert j["lora_alpha"] == ALPHA and j["target_modules"] == sorted(TARGETS[family]), j


# ---------------------------------------------------------------- per family

def make(fam, stats):
    family = fam.name
    base_dir = os.path.join(OUT, family)
    out_dir = os.path.join(base_dir, "lora")
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    base_ref = load_file(os.path.join(base_dir, "reference.safetensors"))
    ids, labels = base_ref["input_ids"], base_ref["labels"]
    n_layers = 2

    ref_model = fam.load(base_dir)            # the family's reference model (HF class / mapped remote-code weights)
    ref_model.requires_grad_(False)
    ref_model.eval()
    base_ck = fam.to_ckpt({n: p.detach() for n, p in ref_model.named_parameters()})
    if isinstance(fam, mff.RemoteFamily):
        ck_file = load_file(os.path.join(base_dir, "model.safetensors"))
        for k in fam.buffers_for(mff.read_json(os.path.join(base_dir, "config.json"))):
            ck_file.pop(k)
        assert set(ck_file) == set(base_ck) and all(torch.equal(ck_file[k], base_ck[k]) for k in ck_file)

    info = {}
    tensors = {"input_ids": ids.contiguous(), "labels": labels.contiguous(),
               "attention_mask": torch.ones_like(ids)}

    if family == "qwen2":
        base = fam.load(base_dir)
        torch.manual_seed(SEEDS[family])
        pm = get_peft_model(base, lora_config(family))
    else:
        skel = skeleton({k: v.clone() for k, v in base_ck.items()})
        torch.manual_seed(SEEDS[family])
        pm = get_peft_model(skel, lora_config(family))
    check_targets(family, pm, n_layers)
    leaves = lora_leaves(pm)

    # B = 0 (peft's own initial state): the explicit method is the base model, bit for bit
    with torch.no_grad():
        zero = {n: (torch.zeros_like(t) if ".lora_B." in n else t) for n, t in leaves.items()}
        out0 = explicit(fam, ref_model, base_ck, lora_pairs(zero), ids, labels)
    assert torch.equal(f32(out0.logits), base_ref["logits"]), family
    assert torch.equal(f32(out0.loss).reshape(1), base_ref["loss"]), family
    info["B=0 explicit == base reference logits"] = "bit-exact"

    set_b(pm, SEEDS[family])
    save_adapter(family, pm, out_dir)
    for n, t in leaves.items():
        tensors[f"init.{n}"] = f32(t)

    # ---- reference batch: logits, loss, gradients
    pm.eval()
    pm.zero_grad(set_to_none=True)
    if family == "qwen2":
        out = pm(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
        out.loss.backward()
        grads = {n: p.grad for n, p in leaves.items()}
        e_out, e_grads = explicit_grads(fam, ref_model, base_ck, leaves, ids, labels)
        lg = max_abs(out.logits, e_out.logits)
        ls = abs(float(out.loss.detach()) - float(e_out.loss.detach()))
        gr = max(max_abs(grads[n], e_grads[n]) for n in grads)
        assert lg <= 1e-6 and ls <= 1e-6 and gr <= 1e-6, (lg, ls, gr)
        info["explicit vs peft: max |logits|"] = lg
        info["explicit vs peft: |loss|"] = ls
        info["explicit vs peft: max |grad|"] = gr
        info["max |grad| (scale)"] = max(float(g.abs().max()) for g in grads.values())
    else:
        out = explicit(fam, ref_model, base_ck, lora_pairs(leaves), ids, labels)
        out.loss.backward()
        grads = {n: p.grad for n, p in leaves.items()}
        # independent check: the transcribed remote-code forward on the merged checkpoint tensors
        r_leaves = {n: t.detach().clone().requires_grad_(True) for n, t in leaves.items()}
        cfg_json = mff.read_json(os.path.join(base_dir, "config.json"))
        r_logits = fam.remote_forward_ck(merged_ckpt(base_ck, lora_pairs(r_leaves)), cfg_json, ids)
        r_loss = F.cross_entropy(r_logits[:, :-1].reshape(-1, r_logits.shape[-1]), labels[:, 1:].reshape(-1),
                                 ignore_index=-100)
        r_loss.backward()
        lg = max_abs(r_logits, out.logits)
        gr = max(max_abs(r_leaves[n].grad, grads[n]) / float(grads[n].abs().max()) for n in grads)
        assert lg < 1e-5 and abs(float(r_loss.detach()) - float(out.loss.detach())) < 1e-6 and gr < 1e-4, (lg, gr)
        info["remote-code forward vs explicit: max |logits|"] = lg
        info["remote-code forward vs explicit: max rel |grad|"] = gr
    tensors["logits"] = f32(out.logits)
    tensors["loss"] = f32(out.loss).reshape(1)
    for n, g in grads.items():
        tensors[f"grad.{n}"] = f32(g)
    info["loss"] = float(out.loss.detach())
    info["base loss"] = float(base_ref["loss"])
    info["max |logits - base logits|"] = max_abs(out.logits, base_ref["logits"])

    # merged weights (checkpoint names, fused layouts)
    with torch.no_grad():
        merged = merged_ckpt(base_ck, lora_pairs(leaves))
    for path in lora_pairs(leaves):
        tensors[f"merged.{path}.weight"] = f32(merged[path + ".weight"])
    if family == "qwen2":
        m = get_peft_model(fam.load(base_dir), lora_config(family))
        m.load_state_dict(pm.state_dict())
        m = m.merge_and_unload()
        md = max(max_abs(p, tensors[f"merged.{n}"]) for n, p in m.named_parameters()
                 if f"merged.{n}" in tensors)
        assert md == 0.0, md
        info["merged vs peft merge_and_unload"] = md

    # ---- three AdamW steps on the adapter
    pm.train()
    ref_model.train()
    opt = torch.optim.AdamW(list(leaves.values()), **ADAMW)
    losses, step_check = [], 0.0
    for k, b in enumerate(train_batches(96)):
        tensors[f"train.batch{k}"] = b.contiguous()
        opt.zero_grad(set_to_none=True)
        if family == "qwen2":
            loss = pm(input_ids=b, attention_mask=torch.ones_like(b), labels=b).loss
            loss.backward()
            e_out, e_grads = explicit_grads(fam, ref_model, base_ck, leaves, b, b)
            step_check = max(step_check, abs(float(loss.detach()) - float(e_out.loss.detach())),
                             max(max_abs(leaves[n].grad, e_grads[n]) for n in leaves))
        else:
            loss = explicit(fam, ref_model, base_ck, lora_pairs(leaves), b, b).loss
            loss.backward()
        for n, p in leaves.items():
            tensors[f"grad{k}.{n}"] = f32(p.grad)
        opt.step()
        losses.append(float(loss.detach()))
        for n, p in leaves.items():
            tensors[f"after{k}.{n}"] = f32(p)
    if family == "qwen2":
        assert step_check <= 1e-6, step_check
        info["explicit vs peft, 3 training steps: max |loss|, |grad|"] = step_check
    tensors["losses"] = torch.tensor(losses, dtype=torch.float32)
    info["losses"] = losses

    meta = versions()
    meta.update({"family": family, "r": str(R), "lora_alpha": str(ALPHA), "target_modules": json.dumps(TARGETS[family]),
                 "seed": str(SEEDS[family]), "loss": repr(info["loss"]), "losses": json.dumps(losses),
                 "optimizer": "torch.optim.AdamW", "lr": "0.01", "betas": "0.9,0.999", "eps": "1e-08",
                 "weight_decay": "0.01", "train_seed": str(TRAIN_SEED),
                 "method": "peft" if family == "qwen2" else "explicit fused LoRA on the mapped reference model"})
    mff.save_st(tensors, os.path.join(out_dir, "reference.safetensors"), meta)

    # ---- reload the adapter the way a user would and check the stored logits
    if family == "qwen2":
        re = PeftModel.from_pretrained(fam.load(base_dir), out_dir)
        re.eval()
        with torch.no_grad():
            re_logits = re(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    else:
        re = PeftModel.from_pretrained(skeleton({k: v.clone() for k, v in base_ck.items()}), out_dir)
        check_targets(family, re, n_layers)
        ref_model.eval()
        with torch.no_grad():
            re_logits = explicit(fam, ref_model, base_ck, lora_pairs(
                {collie_name(n): p for n, p in re.named_parameters() if "lora_" in n}), ids).logits
    assert torch.equal(f32(re_logits), tensors["logits"]), (family, max_abs(re_logits, tensors["logits"]))
    saved = load_file(os.path.join(out_dir, "adapter_model.safetensors"))
    assert sorted(saved) == sorted("base_model.model." + n for n in leaves), sorted(saved)
    for n in leaves:
        assert torch.equal(saved["base_model.model." + n], tensors[f"init.{n}"]), n
    for fn in sorted(os.listdir(out_dir)):
        if fn.endswith(".safetensors"):
            with safe_open(os.path.join(out_dir, fn), framework="pt") as f:
                for k in f.keys():
                    f.get_tensor(k)
    info["names"] = {n: list(t.shape) for n, t in leaves.items()}
    stats[family] = info


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    fams = {f.name: f for f in mff.FAMILIES}
    stats = {}
    for family in ("qwen2", "internlm2", "chatglm"):
        make(fams[family], stats)
    for family, info in stats.items():
        out_dir = os.path.join(OUT, family, "lora")
        size = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
        assert size < 200_000, (family, size)
        print(f"== {family}/lora  ({size} bytes)")
        for fn in sorted(os.listdir(out_dir)):
            print(f"   {fn:32s} {os.path.getsize(os.path.join(out_dir, fn)):>8d}")
        for k, v in info.items():
            if k == "names":
                for n, s in v.items():
                    print(f"   {n} {s}")
            else:
                print(f"   {k}: {v!r}")


if __name__ == "__main__":
    main()
