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

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model

import bench_llama


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
    bench_llama.add_shape_args(ap)
    bench_llama.add_training_args(ap)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-alpha", type=float, default=16)
    ap.add_argument("--lora-dropout", type=float, default=0.0)
    ap.add_argument("--lora-targets", default="q_proj,v_proj", help="module names separated by commas")
    args = ap.parse_args()

    threads = bench_llama.start(args.seed)
    model = bench_llama.llama(args, max(args.seq, 2048), attn=args.attn, use_cache=False)
    rss_model = bench_llama.peak_rss_mib()
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
    print(f"peak RSS after building the model: {rss_model:.1f} MiB", flush=True)
    times = bench_llama.train(model, opt, args)
    frozen_grads = sum(p.numel() for p in model.parameters() if not p.requires_grad and p.grad is not None)
    if frozen_grads:
        print(f"warning: {frozen_grads:,} frozen elements hold gradients", flush=True)
    params_mib = nparams * 4 / 1048576.0
    bench_llama.report(times, args, f"parameters: {params_mib:.1f} MiB; VmHWM {mib(vm_hwm_kib()):.1f} MiB")


if __name__ == "__main__":
    main()
