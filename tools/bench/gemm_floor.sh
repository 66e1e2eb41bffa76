#!/usr/bin/env bash
# Is "collie trains >= 1.5x faster than PyTorch" reachable on this CPU with these GEMM kernels?
# Puts PyTorch's training step beside the GEMM-only floor of collie's step (GemmFloor: only the matrix
# products of one forward + backward, in collie's shapes and call form, nothing else).
#
#   tools/bench/gemm_floor.sh            # both configs: PyTorch fp32, PyTorch bf16 autocast, floor fp32, floor bf16
#   ONLY=pytorch tools/bench/gemm_floor.sh   # just the PyTorch runs (ONLY=gemm for the floor runs)
#   CONFIGS_ONLY=small tools/bench/gemm_floor.sh   # one config
#
# Env: PYTHON (default /work/pyref/bin/python), COLLIE_JAR (default examples/target/collie.jar),
#      JAVA (default java), STEPS_SMALL/STEPS_BIG (timed steps; GemmFloor passes per mode), WARMUP (default 2),
#      BUDGET (GemmFloor --budget, default 60 s per mode), LOG_DIR (default: a temp dir; GemmFloor's logs hold a
#      per-GEMM breakdown per mode).
# GemmFloor runs three times per config: fp32, bf16, and bf16 with the attention GEMMs in fp32 (a second table).
# Output: a markdown table, one row per config. "floor ÷ PyTorch X" = GEMM-only floor tokens/s ÷ PyTorch
# tokens/s of the same precision: the most collie could be faster than PyTorch if everything but the GEMMs
# were free. Below 1.5, the 1.5x target is out of reach with these kernels.
set -u
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-/work/pyref/bin/python}
COLLIE_JAR=${COLLIE_JAR:-examples/target/collie.jar}
JAVA=${JAVA:-java}
WARMUP=${WARMUP:-2}
STEPS_SMALL=${STEPS_SMALL:-10}
STEPS_BIG=${STEPS_BIG:-6}
ONLY=${ONLY:-}
CONFIGS_ONLY=${CONFIGS_ONLY:-}
BUDGET=${BUDGET:-60}   # GemmFloor --budget: seconds per mode before it cuts passes (bf16's batched products are slow)
LOG_DIR=${LOG_DIR:-$(mktemp -d -t collie-gemm-floor.XXXXXX)}
mkdir -p "$LOG_DIR"

# name hidden layers heads kv-heads intermediate vocab batch seq steps
CONFIGS=(
  "small 288 6 6 6 768 32000 4 256 $STEPS_SMALL"
  "base 768 12 12 12 2048 32000 2 512 $STEPS_BIG"
)

pt_tps() {  # the number on the last `tokens/s:` line of a PyTorch log, or "n/a"
  local v
  v=$(grep -E '^tokens/s:' "$1" 2>/dev/null | tail -n 1 | awk '{print $2}')
  echo "${v:-n/a}"
}

floor() {  # "<tokens/s> <ms>" from GemmFloor's `gemm floor (<dt>, best mode): X ms/step = Y tokens/s`, or "n/a n/a"
  local v
  v=$(grep -E "^gemm floor \\($2, best mode\\):" "$1" 2>/dev/null | tail -n 1 | awk '{print $(NF-1), $(NF-4)}')
  echo "${v:-n/a n/a}"
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a/b; else print "n/a" }'
}

extra_rows=()
echo "| config | PyTorch fp32 tok/s | PyTorch bf16 tok/s | GEMM-only floor fp32 tok/s (ms) | GEMM-only floor bf16 tok/s (ms) | floor ÷ PyTorch fp32 | floor ÷ PyTorch bf16 |"
echo "|---|---|---|---|---|---|---|"
for c in "${CONFIGS[@]}"; do
  read -r name hidden layers heads kv inter vocab batch seq steps <<<"$c"
  if [ -n "$CONFIGS_ONLY" ] && [ "$CONFIGS_ONLY" != "$name" ]; then
    continue
  fi
  flags=(--hidden "$hidden" --layers "$layers" --heads "$heads" --kv-heads "$kv" --intermediate "$inter"
         --vocab "$vocab" --batch "$batch" --seq "$seq" --steps "$steps" --warmup "$WARMUP")
  if [ "$ONLY" != "gemm" ]; then
    for ac in none bf16; do
      "$PYTHON" tools/bench/pytorch_bench.py "${flags[@]}" --autocast "$ac" >"$LOG_DIR/pytorch-$name-$ac.log" 2>&1 \
        || echo "pytorch $ac run for $name failed, see $LOG_DIR/pytorch-$name-$ac.log" >&2
    done
  fi
  if [ "$ONLY" != "pytorch" ]; then
    for run in "float" "bf16" "bf16-attn32 --attention-fp32"; do
      read -r tag extra <<<"$run"
      "$JAVA" -Xmx1g -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$COLLIE_JAR" dev.collie.examples.GemmFloor \
        "${flags[@]}" --dtype "${tag%%-*}" --budget "$BUDGET" $extra >"$LOG_DIR/gemm-$name-$tag.log" 2>&1 \
        || echo "GemmFloor $tag run for $name failed, see $LOG_DIR/gemm-$name-$tag.log" >&2
    done
  fi
  pt32=$(pt_tps "$LOG_DIR/pytorch-$name-none.log")
  pt16=$(pt_tps "$LOG_DIR/pytorch-$name-bf16.log")
  read -r f32 f32ms <<<"$(floor "$LOG_DIR/gemm-$name-float.log" fp32)"
  read -r f16 f16ms <<<"$(floor "$LOG_DIR/gemm-$name-bf16.log" bf16)"
  echo "| $name ($hidden/$layers/$heads/$kv/$inter/$vocab, ${batch}x${seq}) | $pt32 | $pt16 | $f32 ($f32ms ms) | $f16 ($f16ms ms) | $(ratio "$f32" "$pt32") | $(ratio "$f16" "$pt16") |"
  read -r m16 m16ms <<<"$(floor "$LOG_DIR/gemm-$name-bf16-attn32.log" "bf16, attention fp32")"
  extra_rows+=("| $name | $m16 ($m16ms ms) | $(ratio "$m16" "$pt32") | $(ratio "$m16" "$pt16") |")
done
echo
echo "ND4J's batched (attention) matmuls in bf16 are a generic loop (< 1 GFLOP/s), so the bf16 floor above is"
echo "mostly them. The floor of bf16 linears with the attention GEMMs kept in fp32 (GemmFloor --attention-fp32):"
echo
echo "| config | GEMM-only floor bf16 linears + fp32 attention tok/s (ms) | floor ÷ PyTorch fp32 | floor ÷ PyTorch bf16 |"
echo "|---|---|---|---|"
for r in "${extra_rows[@]}"; do
  echo "$r"
done
echo
echo "logs: $LOG_DIR" >&2
