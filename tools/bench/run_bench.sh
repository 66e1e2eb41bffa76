#!/usr/bin/env bash
# Compare collie's training throughput with PyTorch (transformers LlamaForCausalLM) on CPU.
#
#   tools/bench/run_bench.sh            # both configs, both frameworks
#   ONLY=pytorch tools/bench/run_bench.sh   # just the PyTorch half (ONLY=collie for the other)
#   MATMUL=bf16 tools/bench/run_bench.sh    # bf16 matmuls on both sides: collie --matmul-precision bf16
#       against PyTorch with torch.set_float32_matmul_precision("medium") (the same: fp32 tensors, bf16
#       matmul inputs) and, in a second column, under torch.autocast("cpu", bfloat16) (bf16 activations)
#
# Env: PYTHON (default /work/pyref/bin/python), COLLIE_JAR (default examples/target/collie.jar),
#      JAVA (default java), STEPS_SMALL/STEPS_BIG, WARMUP (default 2), LOG_DIR (default: a temp dir).
# Thread settings (OMP_NUM_THREADS etc.) are left to each framework: the PyTorch script uses
# torch.set_num_threads(os.cpu_count()); collie picks its own.
# Output: one markdown table row per config with both tokens/s numbers and collie/pytorch.
set -u
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-/work/pyref/bin/python}
COLLIE_JAR=${COLLIE_JAR:-examples/target/collie.jar}
JAVA=${JAVA:-java}
# arrays live off-heap; a small heap keeps the resident size honest; the Vector API module turns on the fused kernels
JAVA_OPTS=${JAVA_OPTS:---add-modules jdk.incubator.vector -Xmx1g}
WARMUP=${WARMUP:-2}
# 30 and 10 timed steps: the median is then a steady-state step on both sides (collie's JIT compiler is still
# busy during its first ~10 steps, which no long training run sees)
STEPS_SMALL=${STEPS_SMALL:-30}
STEPS_BIG=${STEPS_BIG:-10}
ONLY=${ONLY:-}
MATMUL=${MATMUL:-fp32}
case "$MATMUL" in
  fp32) pt_precision=highest ;;
  bf16) pt_precision=medium ;;
  *) echo "MATMUL=$MATMUL: expected fp32 or bf16" >&2; exit 2 ;;
esac
LOG_DIR=${LOG_DIR:-$(mktemp -d -t collie-bench.XXXXXX)}
mkdir -p "$LOG_DIR"

# name hidden layers heads kv-heads intermediate vocab batch seq steps
CONFIGS=(
  "small 288 6 6 6 768 32000 4 256 $STEPS_SMALL"
  "base 768 12 12 12 2048 32000 2 512 $STEPS_BIG"
)

peak_mib() {  # peak resident MiB: collie's "peak memory: N MiB resident" or PyTorch's "peak RSS: N MiB", or "n/a"
  local v
  v=$(grep -E '^(peak memory:|peak RSS:)' "$1" 2>/dev/null | tail -n 1 | awk '{print $3}')
  echo "${v:-n/a}"
}

last_tps() {  # the number on the last `tokens/s:` line of a log, or "n/a"
  local v
  v=$(grep -E '^tokens/s:' "$1" 2>/dev/null | tail -n 1 | awk '{print $2}')
  echo "${v:-n/a}"
}

if [ "$MATMUL" = bf16 ]; then
  echo "| config (bf16 matmuls) | hidden/layers/heads/kv/inter/vocab | batch x seq | pytorch (matmul precision medium) tokens/s | collie tokens/s | collie/pytorch | pytorch autocast bf16 tokens/s | collie/autocast |"
  echo "|---|---|---|---|---|---|---|---|"
else
  echo "| config (fp32) | hidden/layers/heads/kv/inter/vocab | batch x seq | pytorch tokens/s | collie tokens/s | collie/pytorch | pytorch peak RSS MiB | collie peak RSS MiB |"
  echo "|---|---|---|---|---|---|---|---|"
fi
for c in "${CONFIGS[@]}"; do
  read -r name hidden layers heads kv inter vocab batch seq steps <<<"$c"
  flags=(--hidden "$hidden" --layers "$layers" --heads "$heads" --kv-heads "$kv" --intermediate "$inter"
         --vocab "$vocab" --batch "$batch" --seq "$seq" --steps "$steps")
  pt_log="$LOG_DIR/pytorch-$name-$MATMUL.log"
  co_log="$LOG_DIR/collie-$name-$MATMUL.log"
  pt_ac_log="$LOG_DIR/pytorch-$name-autocast.log"
  if [ "$ONLY" != "collie" ]; then
    "$PYTHON" tools/bench/pytorch_bench.py "${flags[@]}" --warmup "$WARMUP" --matmul-precision "$pt_precision" \
      >"$pt_log" 2>&1 || echo "pytorch run for $name failed, see $pt_log" >&2
    if [ "$MATMUL" = bf16 ]; then
      "$PYTHON" tools/bench/pytorch_bench.py "${flags[@]}" --warmup "$WARMUP" --autocast bf16 >"$pt_ac_log" 2>&1 \
        || echo "pytorch autocast run for $name failed, see $pt_ac_log" >&2
    fi
  fi
  if [ "$ONLY" != "pytorch" ]; then
    "$JAVA" $JAVA_OPTS -jar "$COLLIE_JAR" bench "${flags[@]}" --optimizer adamw --matmul-precision "$MATMUL" >"$co_log" 2>&1 \
      || echo "collie run for $name failed, see $co_log" >&2
  fi
  pt=$(last_tps "$pt_log")
  co=$(last_tps "$co_log")
  ratio=$(awk -v a="$co" -v b="$pt" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a/b; else print "n/a" }')
  row="| $name | $hidden/$layers/$heads/$kv/$inter/$vocab | ${batch}x${seq} | $pt | $co | $ratio |"
  if [ "$MATMUL" != bf16 ]; then
    row="$row $(peak_mib "$pt_log") | $(peak_mib "$co_log") |"
  fi
  if [ "$MATMUL" = bf16 ]; then
    ac=$(last_tps "$pt_ac_log")
    row="$row $ac | $(awk -v a="$co" -v b="$ac" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a/b; else print "n/a" }') |"
  fi
  echo "$row"
done
echo
echo "logs: $LOG_DIR" >&2
