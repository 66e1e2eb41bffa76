#!/usr/bin/env python3
"""Hugging Face generate() reference for collie's Generator: its logits processors and a decoded batch.

    /work/pyref/bin/python tools/reference/make_generation_fixtures.py
    # writes collie-models/src/test/resources/fixtures/generation.json

Needs torch and transformers (produced with torch 2.13.0+cpu, transformers 5.18.0; both stored in the file).

1. "processors": for fixed random logits over 96 tokens and a fixed history of ids, the distribution HF samples
   from after RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper and TopPLogitsWarper
   (generate()'s order), softmax of the processed scores, for several settings (each alone and all together).
2. "greedy": the tiny-llama fixture (collie-models/src/test/resources/fixtures/tiny-llama) continuing 3 prompts
   of different lengths, 12 new tokens each, greedily with repetition_penalty 1.3, eos_token_id 2, KV cache on,
   each prompt alone ("tokens"). Every step's gap between the two largest processed scores is recorded (the
   smallest one per row as "min_gap"): a token choice is only compared where that gap is far above float
   rounding. The same prompts as one left-padded batch (pad 0) are in "batched_tokens": generate() penalises
   the pad ids of the shorter rows as if they were text, so a padded row can differ from the row alone (collie's
   batch rows equal the rows alone, pads never penalised).
"""

import json
import os

import torch
import transformers
from transformers import LlamaForCausalLM
from transformers.generation.logits_process import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor,
                                                    TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
FIXTURES = os.path.join(ROOT, "collie-models", "src", "test", "resources", "fixtures")

SETTINGS = [
    {"temperature": 0.7, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.0},
    {"temperature": 1.0, "top_k": 5, "top_p": 1.0, "repetition_penalty": 1.0},
    {"temperature": 1.0, "top_k": 0, "top_p": 0.8, "repetition_penalty": 1.0},
    {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.5},
    {"temperature": 0.8, "top_k": 20, "top_p": 0.9, "repetition_penalty": 1.2},
    {"temperature": 1.3, "top_k": 50, "top_p": 0.6, "repetition_penalty": 0.9},
]


def processors(s):
    out = LogitsProcessorList()
    if s["repetition_penalty"] != 1.0:
        out.append(RepetitionPenaltyLogitsProcessor(s["repetition_penalty"]))
    if s["temperature"] != 1.0:
        out.append(TemperatureLogitsWarper(s["temperature"]))
    if s["top_k"] > 0:
        out.append(TopKLogitsWarper(s["top_k"]))
    if s["top_p"] < 1.0:
        out.append(TopPLogitsWarper(s["top_p"]))
    return out


def main():
    torch.manual_seed(0)
    vocab = 96
    logits = (torch.randn(1, vocab, dtype=torch.float64) * 3)
    history = torch.tensor([[1, 5, 5, 17, 40, 3, 88, 17, 60]])
    cases = []
    for s in SETTINGS:
        scores = processors(s)(history, logits.clone())
        probs = torch.softmax(scores, dim=-1)[0]
        cases.append({"settings": s, "probs": probs.tolist()})

    model = LlamaForCausalLM.from_pretrained(os.path.join(FIXTURES, "tiny-llama"), dtype=torch.float32).eval()
    prompts = [[1, 29, 56, 26, 60, 50], [1, 53, 19], [1, 7, 44, 71, 9]]
    settings = dict(max_new_tokens=12, do_sample=False, repetition_penalty=1.3, eos_token_id=2, pad_token_id=0,
                    use_cache=True, output_scores=True, return_dict_in_generate=True)

    def run(ids, mask):
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, **settings)
        new = out.sequences[:, ids.shape[1]:]
        rows, gaps = [], []
        for r in range(ids.shape[0]):
            toks = new[r].tolist()
            if 2 in toks:
                toks = toks[:toks.index(2) + 1]
            gap = min(float(s[r].topk(2).values[0] - s[r].topk(2).values[1]) for s in out.scores[:len(toks)])
            rows.append(toks)
            gaps.append(gap)
        return rows, gaps

    rows = []
    for p in prompts:
        toks, gaps = run(torch.tensor([p]), torch.ones(1, len(p), dtype=torch.long))
        rows.append({"prompt": p, "tokens": toks[0], "min_gap": gaps[0]})
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    batched, _ = run(ids, mask)
    for r, toks in enumerate(batched):
        rows[r]["batched_tokens"] = toks

    result = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "processors": {"logits": logits[0].tolist(), "history": history[0].tolist(), "cases": cases},
        "greedy": {"repetition_penalty": 1.3, "max_new_tokens": 12, "eos_token_id": 2, "pad_token_id": 0,
                   "rows": rows},
    }
    path = os.path.join(FIXTURES, "generation.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print("wrote", path, "; greedy rows:", [(r["tokens"], r["batched_tokens"], round(r["min_gap"], 4)) for r in rows])


if __name__ == "__main__":
    main()
