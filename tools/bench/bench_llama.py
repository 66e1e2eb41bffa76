"""What the PyTorch baselines of tools/bench share: the model's shape flags (collie bench's names), a random
transformers LlamaForCausalLM in fp32 on all cores, and the timed training loop with its report lines
(`step time: X ms` per step, `median step time`, `peak RSS: N MiB` — ru_maxrss, the VmHWM that collie bench
prints — and LAST `tokens/s: N`, batch*seq / the median step after warm-up)."""

import os
import resource
import statistics
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM


def add_shape_args(ap):
    """--hidden --layers --heads --kv-heads --intermediate --vocab --batch --seed."""
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, default=0, help="default: = heads")
    ap.add_argument("--intermediate", type=int, required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)


def add_training_args(ap):
    """--seq --steps --warmup --attn, for the training baselines."""
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--steps", type=int, default=10, help="timed steps after warm-up")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--attn", default="sdpa", help="attn_implementation (sdpa|eager)")


def start(seed):
    """All cores, the seed, transformers quiet; returns the thread count."""
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    transformers.logging.set_verbosity_error()
    return threads


def llama(args, max_positions, attn="sdpa", **config):
    """A random fp32 LlamaForCausalLM of the flags' shape, untied embeddings; `config` adds LlamaConfig fields."""
    cfg = LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads or args.heads,
        max_position_embeddings=max_positions, tie_word_embeddings=False, **config)
    cfg._attn_implementation = attn
    return LlamaForCausalLM(cfg).to(torch.float32)


def train(model, opt, args, autocast=False):
    """Warm-up and timed steps on random ids (forward, HF causal-LM loss, backward, optimizer); the timed seconds."""
    gen = torch.Generator().manual_seed(args.seed + 1)
    times = []
    for step in range(args.warmup + args.steps):
        ids = torch.randint(0, args.vocab, (args.batch, args.seq), generator=gen, dtype=torch.int64)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        tag = " (warm-up)" if step < args.warmup else ""
        print(f"step {step} loss {float(loss.detach()):.4f} step time: {dt*1000:.1f} ms{tag}", flush=True)
        if step >= args.warmup:
            times.append(dt)
    return times


def peak_rss_mib():
    """The process's high-water mark (ru_maxrss, KiB on Linux) in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def report(times, args, *extra_lines):
    """The median step, `extra_lines`, the peak RSS and, last, tokens/s."""
    med = statistics.median(times)
    print(f"median step time: {med*1000:.1f} ms (min {min(times)*1000:.1f}, max {max(times)*1000:.1f})")
    for line in extra_lines:
        print(line)
    print(f"peak RSS: {peak_rss_mib():.1f} MiB")
    print(f"tokens/s: {args.batch * args.seq / med:.1f}")
