#!/usr/bin/env python3
"""Plain PyTorch AdamW training of an HF llama directory: the reference for `collie train --no-shuffle`.

    /work/pyref/bin/python tools/reference/train_reference.py \
        --model DIR --data rows.jsonl --steps N --micro-batch B \
        --lr 1e-2 --weight-decay 0.01 --save OUT

Semantics (kept identical to collie's `train --no-shuffle`):
  * rows are {"tokens":[...]} lines, consumed in file order; step k uses rows
    k*B .. k*B+B-1, wrapping around to the first row when the file is exhausted;
  * rows of unequal length are right-padded (pad id 0, attention mask 0, label -100);
  * loss = HF causal-LM loss: model(input_ids, attention_mask, labels=input_ids).loss,
    i.e. labels shifted inside, mean over all non-ignored predicted tokens of the micro-batch;
  * optimizer = torch.optim.AdamW(lr, betas, eps, weight_decay) over ALL parameters
    (decoupled decay also on norms/embeddings), constant lr, no warm-up, no gradient
    clipping, one optimizer step per micro-batch (no accumulation);
  * fp32 on CPU, eager attention; the result is written with save_pretrained
    (safetensors) into --save.
Prints `step <k> loss <value>` per step and, as the last line, `final loss: <value>`
(the loss of the last step, computed before its update).
"""

import argparse
import json
import sys

import torch
from transformers import LlamaForCausalLM


def read_rows(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            toks = json.loads(line)["tokens"]
            if len(toks) < 2:
                sys.exit(f"{path}:{n}: a row needs at least 2 tokens")
            rows.append([int(t) for t in toks])
    if not rows:
        sys.exit(f"{path}: no rows")
    return rows


def make_batch(rows):
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.int64)
    mask = torch.zeros(len(rows), width, dtype=torch.int64)
    labels = torch.full((len(rows), width), -100, dtype=torch.int64)
    for i, r in enumerate(rows):
        t = torch.tensor(r, dtype=torch.int64)
        ids[i, :len(r)] = t
        mask[i, :len(r)] = 1
        labels[i, :len(r)] = t
    return ids, mask, labels


def main():
    ap = argparse.ArgumentParser(description="reference AdamW training (file order, no shuffle)")
    ap.add_argument("--model", required=True, help="HF directory to start from")
    ap.add_argument("--data", required=True, help="jsonl with {\"tokens\":[...]} rows")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--micro-batch", type=int, required=True)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.999)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--attn", default="eager", help="attn_implementation (eager|sdpa)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--save", help="output directory (save_pretrained); omit to not save")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = read_rows(args.data)
    model = LlamaForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation=args.attn)
    model.train()
    vocab = model.config.vocab_size
    if any(t < 0 or t >= vocab for r in rows for t in r):
        sys.exit(f"token id out of range for vocab_size {vocab}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps,
                            weight_decay=args.weight_decay)
    B = args.micro_batch
    loss_value = float("nan")
    for step in range(args.steps):
        batch_rows = [rows[(step * B + i) % len(rows)] for i in range(B)]
        ids, mask, labels = make_batch(batch_rows)
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        loss_value = float(loss.detach())
        print(f"step {step} loss {loss_value:.6f}", flush=True)
    if args.save:
        model.save_pretrained(args.save, safe_serialization=True)
        print(f"saved to {args.save}")
    print(f"final loss: {loss_value:.6f}")


if __name__ == "__main__":
    main()
