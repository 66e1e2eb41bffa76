#!/usr/bin/env python3
"""Load a checkpoint directory with transformers and print its mean next-token loss.

Used to prove that a checkpoint written by collie loads in HuggingFace transformers
unchanged (config.json + model.safetensors or a sharded index):

    /work/pyref/bin/python tools/reference/check_hf_dir.py DIR [--ids 1,2,3,...]
    /work/pyref/bin/python tools/reference/check_hf_dir.py DIR --rows rows.jsonl [--max-rows N]

--ids   comma-separated token ids of one sequence (default: 1..min(16, vocab_size-1)).
--rows  a jsonl file of {"tokens":[...]} rows; the loss is the token-weighted mean over all rows.

The loss is HF's causal-LM loss (model(ids, labels=ids).loss: labels shifted inside,
mean over predicted positions).  Output: a few info lines, then as the LAST line
`loss: <float>`.  Exits non-zero if loading reports missing/unexpected weights.
"""

import argparse
import json
import math
import sys

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser(description="mean next-token loss of an HF causal-LM directory")
    ap.add_argument("dir")
    ap.add_argument("--ids", help="comma-separated token ids")
    ap.add_argument("--rows", help="jsonl file with {\"tokens\": [...]} rows")
    ap.add_argument("--max-rows", type=int, default=0)
    ap.add_argument("--attn", default="eager", help="attn_implementation (eager|sdpa)")
    args = ap.parse_args()

    model, info = AutoModelForCausalLM.from_pretrained(
        args.dir, dtype=torch.float32, attn_implementation=args.attn, output_loading_info=True)
    model.eval()
    cfg = model.config
    print(f"loaded {args.dir}: vocab={cfg.vocab_size} hidden={cfg.hidden_size} layers={cfg.num_hidden_layers} "
          f"heads={cfg.num_attention_heads}/{cfg.num_key_value_heads} tied={cfg.tie_word_embeddings} "
          f"rope={dict(cfg.rope_parameters)}")
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        print(f"loading problems: {bad}", file=sys.stderr)

    if args.rows:
        seqs = []
        with open(args.rows) as f:
            for line in f:
                line = line.strip()
                if line:
                    seqs.append(json.loads(line)["tokens"])
                if args.max_rows and len(seqs) >= args.max_rows:
                    break
    elif args.ids:
        seqs = [[int(x) for x in args.ids.split(",") if x.strip()]]
    else:
        seqs = [list(range(1, min(16, cfg.vocab_size - 1) + 1))]

    total, count = 0.0, 0
    with torch.no_grad():
        for s in seqs:
            if len(s) < 2:
                continue
            ids = torch.tensor([s], dtype=torch.int64)
            if int(ids.max()) >= cfg.vocab_size or int(ids.min()) < 0:
                sys.exit(f"token id out of range for vocab_size {cfg.vocab_size}")
            loss = model(input_ids=ids, labels=ids).loss
            n = len(s) - 1
            total += float(loss) * n
            count += n
    if count == 0:
        sys.exit("no sequence with at least 2 tokens")
    mean = total / count
    print(f"sequences: {len(seqs)}  predicted tokens: {count}  ppl: {math.exp(mean):.4f}")
    print(f"loss: {mean:.6f}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
