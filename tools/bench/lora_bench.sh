#!/usr/bin/env bash
# A 1B-class LoRA fine-tune, collie beside PyTorch + peft on this machine, in one run (issue 18).
#
#   tools/bench/lora_bench.sh                # TinyLlama-1.1B's shape, 22 layers: PyTorch first, then collie
#   LAYERS=2 STEPS=2 tools/bench/lora_bench.sh   # a smoke run on a 2-layer model of the same width
#   ONLY=collie tools/bench/lora_bench.sh    # just one side (ONLY=pytorch for the other)
#
# The model: a random LLaMA of hidden 2048, LAYERS (22) layers, 32 heads, 4 key/value heads, intermediate 5632,
# vocab 32000, untied head, fp32 and frozen; LoRA rank LORA_R (8), alpha LORA_ALPHA (16), dropout 0 on
# LORA_TARGETS (q_proj,v_proj); batch 1 x 512 random ids; AdamW over the adapter only.
# PyTorch: tools/bench/pytorch_lora_bench.py (transformers LlamaForCausalLM + peft get_peft_model,
# torch.set_num_threads(os.cpu_count())). collie: `collie bench ... --lora-r --lora-alpha --lora-targets`
# (train's PEFT flags), which keeps no gradients or optimizer state for the frozen base and runs only its
# input-gradient products.
#
# Env: PYTHON (default /work/pyref/bin/python), COLLIE_JAR (default examples/target/collie.jar), JAVA (default java),
#      JAVA_OPTS (default -Xmx1g: arrays live off-heap), STEPS (timed steps, default 5), WARMUP (default 1),
#      LAYERS (default 22), LORA_R, LORA_ALPHA, LORA_TARGETS, ONLY, LOG_DIR (default: a temp dir).
# Peak RSS is each process's resident high-water mark: PyTorch's resource.getrusage ru_maxrss, collie's VmHWM from
# /proc/self/status (the same kernel counter); where /usr/bin/time exists it measures both processes from outside as
# well, printed to stderr as a cross-check.
# Output: a markdown table row with tokens/s, median step ms and peak RSS MiB of each side and collie/PyTorch
# ratios (tokens/s: above 1 is collie faster; RSS: below 1 is collie smaller). Logs stay in LOG_DIR.
set -u
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-/work/pyref/bin/python}
COLLIE_JAR=${COLLIE_JAR:-examples/target/collie.jar}
JAVA=${JAVA:-java}
JAVA_OPTS=${JAVA_OPTS:---add-modules jdk.incubator.vector -Xmx1g}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-1}
LAYERS=${LAYERS:-22}
LORA_R=${LORA_R:-8}
LORA_ALPHA=${LORA_ALPHA:-16}
LORA_TARGETS=${LORA_TARGETS:-q_proj,v_proj}
ONLY=${ONLY:-}
LOG_DIR=${LOG_DIR:-$(mktemp -d -t collie-lora-bench.XXXXXX)}
mkdir -p "$LOG_DIR"

hidden=2048 heads=32 kv=4 inter=5632 vocab=32000 batch=1 seq=512
flags=(--hidden "$hidden" --layers "$LAYERS" --heads "$heads" --kv-heads "$kv" --intermediate "$inter"
       --vocab "$vocab" --batch "$batch" --seq "$seq" --steps "$STEPS" --warmup "$WARMUP"
       --lora-r "$LORA_R" --lora-alpha "$LORA_ALPHA" --lora-dropout 0 --lora-targets "$LORA_TARGETS")
pt_log="$LOG_DIR/pytorch-lora-L$LAYERS.log"
co_log="$LOG_DIR/collie-lora-L$LAYERS.log"

timed=()   # /usr/bin/time's max RSS of the command, into a file beside its log
if [ -x /usr/bin/time ]; then
  timed=(/usr/bin/time -f '%M')
fi
run() {  # run LOG CMD...: the command's output into LOG, /usr/bin/time's figure (KiB) into LOG.time
  local log=$1
  shift
  if [ ${#timed[@]} -gt 0 ]; then
    "${timed[@]}" -o "$log.time" "$@" >"$log" 2>&1
  else
    "$@" >"$log" 2>&1
  fi
}

field() {  # field LOG REGEX AWK-FIELD: that field of the last line matching REGEX, or n/a
  local v
  v=$(grep -E "$2" "$1" 2>/dev/null | tail -n 1 | awk -v f="$3" '{print $f}')
  echo "${v:-n/a}"
}
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a/b; else print "n/a" }'
}

if [ "$ONLY" != "collie" ]; then
  run "$pt_log" "$PYTHON" tools/bench/pytorch_lora_bench.py "${flags[@]}" \
    || echo "pytorch run failed, see $pt_log" >&2
fi
if [ "$ONLY" != "pytorch" ]; then
  # shellcheck disable=SC2086
  run "$co_log" "$JAVA" $JAVA_OPTS -jar "$COLLIE_JAR" bench "${flags[@]}" --optimizer adamw \
    || echo "collie run failed, see $co_log" >&2
fi

pt_tps=$(field "$pt_log" '^tokens/s:' 2)
pt_ms=$(field "$pt_log" '^median step time:' 4)
pt_rss=$(field "$pt_log" '^peak RSS:' 3)
co_tps=$(field "$co_log" '^tokens/s:' 2)
co_ms=$(field "$co_log" '^step time:' 3)
co_rss=$(field "$co_log" '^peak memory:' 3)

echo "| LoRA r$LORA_R on $LORA_TARGETS (fp32 base) | hidden/layers/heads/kv/inter/vocab | batch x seq | pytorch+peft tokens/s | step ms | peak RSS MiB | collie tokens/s | step ms | peak RSS MiB | tokens/s collie/pytorch | RSS collie/pytorch |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
echo "| $(nproc) cores | $hidden/$LAYERS/$heads/$kv/$inter/$vocab | ${batch}x${seq} | $pt_tps | $pt_ms | $pt_rss | $co_tps | $co_ms | $co_rss | $(ratio "$co_tps" "$pt_tps") | $(ratio "$co_rss" "$pt_rss") |"
for side in pytorch collie; do
  f="$LOG_DIR/$side-lora-L$LAYERS.log.time"
  if [ -s "$f" ]; then
    echo "$side: /usr/bin/time max RSS $(awk 'END { printf "%.1f", $1 / 1024 }' "$f") MiB" >&2
  fi
done
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" >&2
echo "logs: $LOG_DIR" >&2
