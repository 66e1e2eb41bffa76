#!/usr/bin/env python3
"""Generate the Hugging Face peft reference fixtures used by collie-peft's tests.

Run from the repository root (deterministic: re-running rewrites every file it owns):

    /work/pyref/bin/python tools/reference/make_peft_fixtures.py

Needs torch, transformers (>= 5), peft, safetensors.  Produced with torch 2.13.0+cpu,
transformers 5.18.0, peft 0.21.0, safetensors 0.8.0 (also recorded in the metadata of
reference.safetensors and in counts.json).

Base model: the tiny LLaMA fixture collie-models/src/test/resources/fixtures/tiny-llama
(GQA 4 heads / 2 kv heads, head_dim 8, 2 layers, hidden 32, vocab 96).

What it writes under collie-models/src/test/resources/fixtures/peft/:

  lora/               adapter_config.json + adapter_model.safetensors as peft's save_pretrained writes them:
                      r=4, lora_alpha=8, lora_dropout=0, all seven projections; lora_B set to
                      0.1 * randn (seeded) so that the adapter changes the logits
  prefix/             prefix tuning, 3 virtual tokens, no projection (embedding ~ N(0, 1) as peft initialises)
  prefix-projection/  prefix tuning with prefix_projection=True, encoder_hidden_size=24; the file holds what peft
                      saves: the *output* of the reparameterisation MLP ([3, 2 layers * 2 * 16])
  prompt/             prompt tuning, 4 virtual tokens, RANDOM init
  p-tuning/           P-tuning (PromptEncoder, MLP, encoder_hidden_size=20), 3 virtual tokens; the file holds
                      the MLP's output ([3, 32])
  reference.safetensors
      input_ids [2, 12] (generator seed 1234, as tiny-llama/reference.safetensors), attention_mask (ones)
      <method>.logits              PeftModel(input_ids, attention_mask).logits; prompt methods keep the
                                   virtual positions ([2, n + 12, 96]) exactly as peft returns them
      <method>.init.<name>         the trainable parameters before training (collie names, see below)
      train.batch{0,1,2}           three [2, 12] batches (generator seed 4321); labels = input_ids
      <method>.losses              [3] peft loss of each step before its update
      <method>.grad{k}.<name>      the gradient of every trainable parameter in step k (k = 0, 1, 2)
      <method>.after{k}.<name>     every trainable parameter after step k's torch.optim.AdamW update
                                   (lr 1e-2, betas 0.9/0.999, eps 1e-8, weight_decay 0.01, adapter params only);
                                   the test checks each step on its own: collie's loss and gradients at torch's
                                   weights, then collie's AdamW on torch's gradients (several fp32 AdamW steps
                                   compared end to end are ill-conditioned: see docs/design-notes.md)
      lora.merged.<name>           merge_and_unload() weights of the LoRA-targeted linears
  counts.json         {method: {"trainable": n, "all": n}} as peft's get_nb_trainable_parameters() reports
                      for a freshly wrapped model (training mode, MLP encoders included)

Collie parameter names: peft's names without "base_model.model." (LoRA) and without the adapter name
"default": e.g. model.layers.0.self_attn.q_proj.lora_A.weight, prompt_encoder.embedding.weight,
prompt_encoder.transform.0.weight, prompt_encoder.mlp_head.4.bias.

Second mode, to check an adapter that collie saved (not used by the tests, which need no Python):

    /work/pyref/bin/python tools/reference/make_peft_fixtures.py --check-adapter DIR

loads DIR with PeftModel.from_pretrained on the tiny LLaMA and compares the logits with
DIR/collie_logits.safetensors ("input_ids", "logits"), printing the largest absolute difference.
"""

import argparse
import json
import os
import shutil

import torch
import transformers
import safetensors
import peft
from safetensors.torch import save_file, load_file
from transformers import LlamaForCausalLM
from peft import (LoraConfig, PrefixTuningConfig, PromptTuningConfig, PromptEncoderConfig, PeftModel,
                  TaskType, get_peft_model)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(REPO_ROOT, "collie-models", "src", "test", "resources", "fixtures")
TINY = os.path.join(FIXTURES, "tiny-llama")
OUT = os.path.join(FIXTURES, "peft")
BASE_NAME = "tiny-llama"   # base_model_name_or_path written into the adapter configs
ADAMW = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "safetensors": safetensors.__version__, "generator": "tools/reference/make_peft_fixtures.py"}


def load_base():
    return LlamaForCausalLM.from_pretrained(TINY, dtype=torch.float32, attn_implementation="eager")


def configs():
    return {
        "lora": LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, task_type=TaskType.CAUSAL_LM,
                           target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                           "down_proj"]),
        "prefix": PrefixTuningConfig(num_virtual_tokens=3, task_type=TaskType.CAUSAL_LM),
        "prefix-projection": PrefixTuningConfig(num_virtual_tokens=3, prefix_projection=True,
                                                encoder_hidden_size=24, task_type=TaskType.CAUSAL_LM),
        "prompt": PromptTuningConfig(num_virtual_tokens=4, task_type=TaskType.CAUSAL_LM),
        "p-tuning": PromptEncoderConfig(num_virtual_tokens=3, encoder_hidden_size=20,
                                        encoder_reparameterization_type="MLP", task_type=TaskType.CAUSAL_LM),
    }


def collie_name(peft_name):
    n = peft_name.replace(".default.", ".")
    if n.startswith("base_model.model."):
        n = n[len("base_model.model."):]
    return n


def trainable(model):
    return {collie_name(n): p for n, p in model.named_parameters() if p.requires_grad}


def f32(t):
    return t.detach().to(torch.float32).contiguous().clone()


def batch(seed, count):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 96, (2, 12), generator=gen, dtype=torch.int64) for _ in range(count)]


def make(method, cfg, seed, tensors, counts, ids):
    torch.manual_seed(seed)
    model = get_peft_model(load_base(), cfg)
    if method == "lora":
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    t, a = model.get_nb_trainable_parameters()
    counts[method] = {"trainable": t, "all": a}
    out_dir = os.path.join(OUT, method)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    model.peft_config["default"].base_model_name_or_path = BASE_NAME
    if method == "lora":   # a set in memory: its order varies run to run (string hashing); written sorted
        model.peft_config["default"].target_modules = sorted(model.peft_config["default"].target_modules)
    model.save_pretrained(out_dir, save_embedding_layers=False)
    readme = os.path.join(out_dir, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    for n, p in trainable(model).items():
        tensors[f"{method}.init.{n}"] = f32(p)

    # logits of the freshly saved adapter, reloaded the way a user would (inference mode)
    reloaded = PeftModel.from_pretrained(load_base(), out_dir)
    reloaded.eval()
    with torch.no_grad():
        logits = reloaded(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        own = model.eval()(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert torch.allclose(logits, own, atol=1e-6), f"{method}: reloaded adapter differs"
    tensors[f"{method}.logits"] = f32(logits)

    if method == "lora":
        merged = get_peft_model(load_base(), configs()["lora"])
        merged.load_state_dict(model.state_dict())
        merged = merged.merge_and_unload()
        with torch.no_grad():
            assert torch.allclose(merged(input_ids=ids).logits, logits, atol=1e-5)
        for n, p in merged.named_parameters():
            if any(n.endswith(f"{m}.weight") for m in cfg.target_modules):
                tensors[f"lora.merged.{n}"] = f32(p)

    # three AdamW steps on the adapter parameters (training mode; no dropout anywhere)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, **ADAMW)
    losses = []
    for k, b in enumerate(batch(4321, 3)):
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=b, attention_mask=torch.ones_like(b), labels=b).loss
        loss.backward()
        for n, p in model.named_parameters():
            if p.requires_grad:
                tensors[f"{method}.grad{k}.{collie_name(n)}"] = f32(p.grad)
        opt.step()
        losses.append(float(loss.detach()))
        for n, p in trainable(model).items():
            tensors[f"{method}.after{k}.{n}"] = f32(p)
    tensors[f"{method}.losses"] = torch.tensor(losses, dtype=torch.float32)
    return losses


def check_adapter(path):
    ref = load_file(os.path.join(path, "collie_logits.safetensors"))
    ids = ref["input_ids"]
    model = PeftModel.from_pretrained(load_base(), path)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    diff = (logits.reshape(ref["logits"].shape) - ref["logits"]).abs().max().item()
    print(f"{path}: {model.peft_config['default'].peft_type.value}, logits {tuple(logits.shape)}, "
          f"max |peft - collie| = {diff:.3g}")
    return diff


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check-adapter", nargs="+", metavar="DIR")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    if args.check_adapter:
        worst = max(check_adapter(p) for p in args.check_adapter)
        raise SystemExit(0 if worst < 1e-4 else 1)

    os.makedirs(OUT, exist_ok=True)
    ids = batch(1234, 1)[0]
    tensors = {"input_ids": ids.contiguous(), "attention_mask": torch.ones_like(ids)}
    for k, b in enumerate(batch(4321, 3)):
        tensors[f"train.batch{k}"] = b.contiguous()
    counts = {}
    for i, (method, cfg) in enumerate(configs().items()):
        losses = make(method, cfg, 100 + i, tensors, counts, ids)
        print(f"{method:18s} trainable {counts[method]['trainable']:6d} all {counts[method]['all']:6d} "
              f"losses {losses}")
    meta = versions()
    save_file(tensors, os.path.join(OUT, "reference.safetensors"), metadata={"info": json.dumps(meta, sort_keys=True)})
    with open(os.path.join(OUT, "counts.json"), "w") as f:
        json.dump({"versions": meta, "counts": counts}, f, indent=2, sort_keys=True)
        f.write("\n")
    total = 0
    for root, _dirs, files in os.walk(OUT):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            total += os.path.getsize(p)
            print(f"  {os.path.relpath(p, OUT):50s} {os.path.getsize(p):>8d}")
    print(f"total bytes: {total}")


if __name__ == "__main__":
    main()
