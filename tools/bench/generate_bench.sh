#!/usr/bin/env bash
# Decode speed of collie's Generator against Hugging Face generate() on the same CPU, same run.
#
#   tools/bench/generate_bench.sh          # the 134M LLaMA (768/12L, vocab 32000), batch 1 and 8, prompt 128, 128 new
#
# Both sides: a random fp32 model, greedy, no EOS, KV cache, exactly NEW tokens per row; the prefill (prompt forward
# and first token) timed alone, decode tokens/s = batch x (NEW - 1) / (full - prefill), medians of REPEATS runs after
# one warm-up (collie: `collie bench-generate`; PyTorch: tools/bench/pytorch_generate_bench.py). Start-up (JVM or
# Python imports, to a built model) is reported apart. Env: PYTHON, COLLIE (default examples/bin/collie), BATCHES,
# PROMPT, NEW, REPEATS, LOG_DIR.
set -u
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/work/pyref/bin/python}
COLLIE=${COLLIE:-examples/bin/collie}
BATCHES=${BATCHES:-"1 8"}
PROMPT=${PROMPT:-128}
NEW=${NEW:-128}
REPEATS=${REPEATS:-3}
LOG_DIR=${LOG_DIR:-$(mktemp -d -t collie-genbench.XXXXXX)}
mkdir -p "$LOG_DIR"
shape=(--hidden 768 --layers 12 --heads 12 --intermediate 2048 --vocab 32000)

field() {  # the value after "<name>: " on the last such line of a log
  grep -E "^$2:" "$1" | tail -n 1 | sed -E "s#^$2: *([0-9.]+).*#\1#"
}

echo "| batch | HF prefill ms | HF decode tokens/s | HF peak RSS MiB | collie prefill ms | collie decode tokens/s | collie peak RSS MiB | collie/HF decode | start-up HF / collie s |"
echo "|---|---|---|---|---|---|---|---|---|"
for b in $BATCHES; do
  pt="$LOG_DIR/hf-b$b.log"
  co="$LOG_DIR/collie-b$b.log"
  "$PYTHON" tools/bench/pytorch_generate_bench.py "${shape[@]}" --batch "$b" --prompt "$PROMPT" \
    --new-tokens "$NEW" --repeats "$REPEATS" >"$pt" 2>&1
  "$COLLIE" bench-generate "${shape[@]}" --batch "$b" --seq "$PROMPT" --new-tokens "$NEW" \
    --repeats "$REPEATS" >"$co" 2>&1
  hf=$(field "$pt" tokens/s)
  cj=$(field "$co" tokens/s)
  ratio=$(awk -v a="$cj" -v b="$hf" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
  echo "| $b | $(field "$pt" prefill) | $hf | $(field "$pt" 'peak memory') | $(field "$co" prefill) | $cj |" \
       "$(field "$co" 'peak memory') | $ratio | $(field "$pt" startup) / $(field "$co" startup) |"
done
echo "logs: $LOG_DIR" >&2
