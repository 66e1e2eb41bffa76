#!/usr/bin/env python3
"""PyTorch + peft LoRA fine-tuning baseline for `collie bench --lora-r ...` (tools/bench/lora_bench.sh).

    ${PYTHON:-/work/pyref/bin/python} tools/bench/pytorch_lora_bench.py \
        --hidden 2048 --layers 22 --heads 32 --kv-heads 4 --intermediate 5632 --vocab 32000 \
        --batch 1 --seq 512 --steps 5 --warmup 1 --lora-r 8 --lora-alpha 16 --lora-targets q_proj,v_proj

A randomly initialised transformers.LlamaForCausalLM (untied embeddings, fp32, CPU,
torch.set_num_threads(os.cpu_count())) wrapped by peft.get_peft_model with
LoraConfig(r, lora_alpha, target_modules, lora_dropout=0): the base is frozen, AdamW(lr=1e-4)
updates only the adapter. Each step = forward + HF causal-LM loss + backward + optimizer step
on random token ids. Prints one `step time: X ms` line per step, then
`peak RSS: N MiB` (resource.getrusage(RUSAGE_SELF).ru_maxrss: the process's high-water mark,
the same figure as /proc/self/status VmHWM, which collie bench prints) and, as its LAST line,
`tokens/s: <number>` = batch*seq / median step time over the steps after warm-up.
The arguments are pytorch_bench.py's plus --lora-r/--lora-alpha/--lora-dropout/--lora-targets
(collie's flag names).
"""

import argparse
import os
import resource
import statistics
import time

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM


def mib(kib):
    return kib / 1024.0


def vm_hwm_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    ap = argparse.ArgumentParser(description="PyTorch + peft LoRA training throughput")
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, default=0, help="default: = heads")
    ap.add_argument("--intermediate", type=int, required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--steps", type=int, default=10, help="timed steps after warm-up")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--attn", default="sdpa", help="attn_implementation (sdpa|eager)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-alpha", type=float, default=16)
    ap.add_argument("--lora-dropout", type=float, default=0.0)
    ap.add_argument("--lora-targets", default="q_proj,v_proj", help="module names separated by commas")
    args = ap.parse_args()

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    transformers.logging.set_verbosity_error()
    cfg = LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads or args.heads,
        max_position_embeddings=max(args.seq, 2048), tie_word_embeddings=False, use_cache=False)
    cfg._attn_implementation = args.attn
    model = LlamaForCausalLM(cfg).to(torch.float32)
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lora = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=[t for t in args.lora_targets.split(",") if t], bias="none",
                      task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.train()
    nparams = sum(p.numel() for p in model.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    ntrain = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    print(f"torch {torch.__version__} transformers {transformers.__version__} peft {peft.__version__} "
          f"threads {threads} attn {args.attn} params {nparams/1e6:.2f}M trainable {ntrain:,} "
          f"lora r {args.lora_r} alpha {args.lora_alpha} targets {args.lora_targets} "
          f"batch {args.batch} seq {args.seq}", flush=True)
    print(f"peak RSS after building the model: {mib(rss_model):.1f} MiB", flush=True)

    gen = torch.Generator().manual_seed(args.seed + 1)
    times = []
    for step in range(args.warmup + args.steps):
        ids = torch.randint(0, args.vocab, (args.batch, args.seq), generator=gen, dtype=torch.int64)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        tag = " (warm-up)" if step < args.warmup else ""
        print(f"step {step} loss {float(loss.detach()):.4f} step time: {dt*1000:.1f} ms{tag}", flush=True)
        if step >= args.warmup:
            times.append(dt)
    frozen_grads = sum(p.numel() for p in model.parameters() if not p.requires_grad and p.grad is not None)
    if frozen_grads:
        print(f"warning: {frozen_grads:,} frozen elements hold gradients", flush=True)
    med = statistics.median(times)
    params_mib = nparams * 4 / 1048576.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # KiB on Linux
    print(f"median step time: {med*1000:.1f} ms (min {min(times)*1000:.1f}, max {max(times)*1000:.1f})")
    print(f"parameters: {params_mib:.1f} MiB; VmHWM {mib(vm_hwm_kib()):.1f} MiB")
    print(f"peak RSS: {mib(peak):.1f} MiB")
    print(f"tokens/s: {args.batch * args.seq / med:.1f}")


if __name__ == "__main__":
    main()
