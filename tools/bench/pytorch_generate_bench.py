#!/usr/bin/env python3
"""Hugging Face generate() decode-throughput baseline for `collie bench-generate`.

    ${PYTHON:-/work/pyref/bin/python} tools/bench/pytorch_generate_bench.py \
        --hidden 768 --layers 12 --heads 12 --intermediate 2048 --vocab 32000 \
        --batch 8 --prompt 128 --new-tokens 128

A randomly initialised transformers.LlamaForCausalLM (fp32, CPU, sdpa attention, untied embeddings,
torch.set_num_threads(os.cpu_count())) generates exactly --new-tokens tokens greedily for --batch random
prompts of --prompt tokens (no EOS, KV cache on, under torch.inference_mode()). The prefill (the prompt's
forward and the first token) is timed on its own by generate(max_new_tokens=1); the decode rate is the
remaining new-tokens - 1 tokens per row over the time the full call takes beyond that prefill:

    decode tokens/s = batch * (new_tokens - 1) / (t_full - t_prefill)

each the median of --repeats runs after one warm-up. Lines: `prefill: X ms`, `generate: X ms`, the process
start-up (imports, model build) `startup: X s`, and LAST `tokens/s: <decode tokens per second>`.
"""

import argparse
import os
import statistics
import time

T_START = time.perf_counter()

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="HF generate() decode throughput")
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, default=0, help="default: = heads")
    ap.add_argument("--intermediate", type=int, required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--prompt", type=int, required=True, help="prompt tokens per row")
    ap.add_argument("--new-tokens", type=int, required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(args.seed)
    transformers.logging.set_verbosity_error()
    cfg = LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads or args.heads,
        max_position_embeddings=max(2048, args.prompt + args.new_tokens), tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=None, pad_token_id=0)
    cfg._attn_implementation = "sdpa"
    model = LlamaForCausalLM(cfg).to(torch.float32).eval()
    ids = torch.randint(1, args.vocab, (args.batch, args.prompt))
    mask = torch.ones_like(ids)
    startup = time.perf_counter() - T_START

    def run(n):
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                 do_sample=False, use_cache=True, pad_token_id=0)
        dt = time.perf_counter() - t0
        assert out.shape[1] == args.prompt + n, out.shape
        return dt

    run(args.new_tokens)  # warm-up
    prefill = statistics.median(run(1) for _ in range(args.repeats))
    full = statistics.median(run(args.new_tokens) for _ in range(args.repeats))
    print(f"threads: {torch.get_num_threads()}  torch {torch.__version__}  transformers {transformers.__version__}")
    print(f"startup: {startup:.2f} s")
    print(f"prefill: {prefill * 1e3:.1f} ms")
    print(f"generate: {full * 1e3:.1f} ms")
    print(f"tokens/s: {args.batch * (args.new_tokens - 1) / (full - prefill):.1f}")


if __name__ == "__main__":
    main()
