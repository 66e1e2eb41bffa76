#!/usr/bin/env python3
"""Hugging Face generate() decode-throughput baseline for `collie bench-generate`.

    ${PYTHON:-/work/pyref/bin/python} tools/bench/pytorch_generate_bench.py \
        --hidden 768 --layers 12 --heads 12 --intermediate 2048 --vocab 32000 \
        --batch 8 --prompt 128 --new-tokens 128

A randomly initialised transformers.LlamaForCausalLM (fp32, CPU, sdpa attention, untied embeddings,
torch.set_num_threads(os.cpu_count())) generates exactly --new-tokens tokens greedily for --batch random
prompts of --prompt tokens (no EOS, KV cache on, under torch.inference_mode()). A streamer notes the time of
each new token: the prefill is the time to the first one (the prompt's forward and its pick), the decode rate is
the tokens after it over the time they took:

    decode tokens/s = batch * (new_tokens - 1) / (t_last_token - t_first_token)

each the median of --repeats runs after one warm-up (collie's Generator.Result measures the same two spans).
Lines: `prefill: X ms`, `generate: X ms` (the whole call), the process start-up (imports, model build)
`startup: X s`, the peak resident size, and LAST `tokens/s: <decode tokens per second>`.
"""

import argparse
import statistics
import time

T_START = time.perf_counter()

import torch  # noqa: E402
import transformers  # noqa: E402

import bench_llama  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="HF generate() decode throughput")
    bench_llama.add_shape_args(ap)
    ap.add_argument("--prompt", type=int, required=True, help="prompt tokens per row")
    ap.add_argument("--new-tokens", type=int, required=True)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    bench_llama.start(args.seed)
    model = bench_llama.llama(args, max(2048, args.prompt + args.new_tokens), bos_token_id=None,
                              eos_token_id=None, pad_token_id=0).eval()
    ids = torch.randint(1, args.vocab, (args.batch, args.prompt))
    mask = torch.ones_like(ids)
    startup = time.perf_counter() - T_START

    class Clock:
        """generate() hands a streamer the prompt, then each step's new tokens: the time of each hand-over."""

        def __init__(self):
            self.times = []

        def put(self, value):
            self.times.append(time.perf_counter())

        def end(self):
            pass

    def run():
        clock = Clock()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.new_tokens,
                                 min_new_tokens=args.new_tokens, do_sample=False, use_cache=True, pad_token_id=0,
                                 streamer=clock)
        t1 = time.perf_counter()
        assert out.shape[1] == args.prompt + args.new_tokens, out.shape
        assert len(clock.times) == args.new_tokens + 1, len(clock.times)   # the prompt, then each token
        return clock.times[1] - t0, clock.times[-1] - clock.times[1], t1 - t0

    run()  # warm-up
    runs = [run() for _ in range(args.repeats)]
    prefill = statistics.median(r[0] for r in runs)
    decode = statistics.median(r[1] for r in runs)
    full = statistics.median(r[2] for r in runs)
    print(f"threads: {torch.get_num_threads()}  torch {torch.__version__}  transformers {transformers.__version__}")
    print(f"startup: {startup:.2f} s")
    print(f"prefill: {prefill * 1e3:.1f} ms")
    print(f"generate: {full * 1e3:.1f} ms")
    print(f"peak memory: {bench_llama.peak_rss_mib():.1f} MiB resident")
    print(f"tokens/s: {args.batch * (args.new_tokens - 1) / decode:.1f}")


if __name__ == "__main__":
    main()
