#!/usr/bin/env bash
# Runs the whole test suite once per setting (other kernels, threads, oneDNN 3.3 off) and collects every figure the
# numerical tests compare: docs/design-notes.md, "Comparisons that hold on any CPU".
#   tools/numerical_settings.sh OUTDIR [SETTING...]      (default: all settings below)
# Writes OUTDIR/<setting>.log and .tsv and appends "<setting> <seconds> <failing tests>" to OUTDIR/summary.txt;
# each setting builds into its own target-<setting>. Then: python3 tools/agreement_table.py OUTDIR/*.tsv
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:?usage: $0 OUTDIR [SETTING...]}")
shift
settings=("$@")
[ ${#settings[@]} -eq 0 ] && settings=(default avx2 avx512core openblas-skylakex nd4j-onednn-avx512 nodnnl threads1 ci-capped)
mkdir -p "$out"
for name in "${settings[@]}"; do
  envs=(); props=()
  case $name in
    default) ;;
    avx2) envs=(ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2) ;;
    avx512core) envs=(ONEDNN_MAX_CPU_ISA=AVX512_CORE DNNL_MAX_CPU_ISA=AVX512_CORE) ;;
    openblas-skylakex) envs=(OPENBLAS_CORETYPE=SkylakeX) ;;
    nd4j-onednn-avx512) props=(-Pnd4j-onednn-avx512) ;;
    nodnnl) envs=(COLLIE_ONEDNN3=off) ;;
    threads1) envs=(JAVA_TOOL_OPTIONS=-XX:ActiveProcessorCount=1) ;;
    ci-capped) envs=(ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell) ;;
    *) echo "unknown setting $name" >&2; exit 2 ;;
  esac
  rm -f "$out/$name.tsv"
  start=$(date +%s)
  env COLLIE_AGREEMENT_LOG="$out/$name.tsv" "${envs[@]}" mvn -B test -Dmaven.test.failure.ignore=true \
      -Dbuild.suffix=-"$name" "${props[@]}" > "$out/$name.log" 2>&1
  end=$(date +%s)
  echo "$name $((end - start))s $(grep -c '<<< FAIL\|<<< ERR' "$out/$name.log" | awk '{print $1/2}') failing" \
      | tee -a "$out/summary.txt"
done
