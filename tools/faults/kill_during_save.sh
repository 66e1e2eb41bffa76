#!/usr/bin/env bash
# Kills `collie train --save OUT` (SIGKILL) at many points of its final save over an existing model and checks
# after each kill that OUT still loads (the old model or the new one, never a mix) with `collie score`.
# Usage: tools/faults/kill_during_save.sh [ROUNDS] [PRESET]   (needs examples/target/collie.jar: mvn -B package -DskipTests)
set -euo pipefail
ROUNDS=${1:-20}
PRESET=${2:-small}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
JAR=$ROOT/examples/target/collie.jar
DATA=$ROOT/examples/data/moby-dick.txt
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
OUT=$WORK/out
collie() { java -jar "$JAR" "$@"; }
# exec: the background job's pid is the JVM's own, so the kill reaches it
train() { exec java -jar "$JAR" train --preset "$PRESET" --tokenizer "$ROOT/examples/data/tokenizer" --data "$DATA" --seq 64 --steps 1 \
  --save "$OUT" --seed "$1"; }

(train 1) > "$WORK/first.log" 2>&1
old=$(sha256sum "$OUT/model.safetensors" | cut -c1-16)
kept_old=0; got_new=0
for i in $(seq 1 "$ROUNDS"); do
  (train $((i + 1))) > "$WORK/run.log" 2>&1 &
  pid=$!
  # wait for the new directory to appear beside OUT, then kill after a random 0..399 ms into the save
  while kill -0 "$pid" 2>/dev/null && ! compgen -G "$WORK/.out.tmp-*" > /dev/null; do sleep 0.005; done
  sleep "0.$(printf '%03d' $((RANDOM % 400)))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if ! collie score --model "$OUT" --ids 1,2,3 > "$WORK/score.log" 2>&1; then
    echo "round $i: $OUT does not load:"; cat "$WORK/score.log"; ls -la "$WORK" "$OUT" || true; exit 1
  fi
  now=$(sha256sum "$OUT/model.safetensors" | cut -c1-16)
  if [ "$now" = "$old" ]; then kept_old=$((kept_old + 1)); else got_new=$((got_new + 1)); old=$now; fi
done
echo "kill during save: $ROUNDS rounds, $OUT loaded after every kill: old model kept $kept_old, new model $got_new"
