#!/usr/bin/env python3
"""PyTorch training-throughput baseline for collie's `bench` command.

    ${PYTHON:-/work/pyref/bin/python} tools/bench/pytorch_bench.py \
        --hidden 288 --layers 6 --heads 6 --kv-heads 6 --intermediate 768 --vocab 32000 \
        --batch 4 --seq 256 --steps 10 --warmup 2

Trains a randomly initialised transformers.LlamaForCausalLM (untied embeddings, fp32,
CPU, torch.set_num_threads(os.cpu_count())) with AdamW(lr=1e-4) on random token
batches; each step = forward + HF causal-LM loss + backward + optimizer step.
Prints one `step time: X ms` line per step and, as its LAST line,
`tokens/s: <number>` = batch*seq / median step time over the steps after warm-up.
"""

import argparse
import os
import resource
import statistics
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser(description="PyTorch llama training throughput")
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
    ap.add_argument("--autocast", default="none", choices=["none", "bf16"],
                    help="bf16: torch.autocast('cpu', torch.bfloat16) around forward and loss (fp32 master weights)")
    ap.add_argument("--matmul-precision", default="highest", choices=["highest", "medium"],
                    help="torch.set_float32_matmul_precision: medium = fp32 tensors, bf16 matmul inputs "
                         "(oneDNN), as collie's --matmul-precision bf16")
    args = ap.parse_args()

    torch.set_float32_matmul_precision(args.matmul_precision)
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
    model.train()
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    print(f"torch {torch.__version__} transformers {transformers.__version__} threads {threads} "
          f"attn {args.attn} autocast {args.autocast} matmul {args.matmul_precision} params {nparams/1e6:.2f}M batch {args.batch} seq {args.seq}", flush=True)

    gen = torch.Generator().manual_seed(args.seed + 1)
    times = []
    for step in range(args.warmup + args.steps):
        ids = torch.randint(0, args.vocab, (args.batch, args.seq), generator=gen, dtype=torch.int64)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast == "bf16"):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        tag = " (warm-up)" if step < args.warmup else ""
        print(f"step {step} loss {float(loss.detach()):.4f} step time: {dt*1000:.1f} ms{tag}", flush=True)
        if step >= args.warmup:
            times.append(dt)
    med = statistics.median(times)
    print(f"median step time: {med*1000:.1f} ms")
    # the process's high-water mark (VmHWM, what collie bench's "peak memory" reports), before the last line
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")
    print(f"tokens/s: {args.batch * args.seq / med:.1f}")


if __name__ == "__main__":
    main()
