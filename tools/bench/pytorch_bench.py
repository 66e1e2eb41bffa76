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

import torch
import transformers

import bench_llama


def main():
    ap = argparse.ArgumentParser(description="PyTorch llama training throughput")
    bench_llama.add_shape_args(ap)
    bench_llama.add_training_args(ap)
    ap.add_argument("--autocast", default="none", choices=["none", "bf16"],
                    help="bf16: torch.autocast('cpu', torch.bfloat16) around forward and loss (fp32 master weights)")
    ap.add_argument("--matmul-precision", default="highest", choices=["highest", "medium"],
                    help="torch.set_float32_matmul_precision: medium = fp32 tensors, bf16 matmul inputs "
                         "(oneDNN), as collie's --matmul-precision bf16")
    args = ap.parse_args()

    torch.set_float32_matmul_precision(args.matmul_precision)
    threads = bench_llama.start(args.seed)
    model = bench_llama.llama(args, max(args.seq, 2048), attn=args.attn, use_cache=False)
    model.train()
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    print(f"torch {torch.__version__} transformers {transformers.__version__} threads {threads} "
          f"attn {args.attn} autocast {args.autocast} matmul {args.matmul_precision} params {nparams/1e6:.2f}M batch {args.batch} seq {args.seq}", flush=True)
    times = bench_llama.train(model, opt, args, autocast=args.autocast == "bf16")
    bench_llama.report(times, args)


if __name__ == "__main__":
    main()
