#!/usr/bin/env bash
# Runs the nccl communicator backend's tests (NcclCommunicatorTest) on a machine with NVIDIA GPUs.
#
# Needs, and downloads none of it (GPU machines often have no network):
#   - JDK 17 and Maven, with ~/.m2 already holding the project's dependencies (build once where there is
#     network; Maven runs offline here unless MVN_FLAGS says otherwise);
#   - the natives of JavaCPP's CUDA presets, 11.6-8.3-1.5.7 (the build ND4J 1.0.0-M2.1 uses):
#       CUDA_JNI_JAR    org.bytedeco:cuda:11.6-8.3-1.5.7:linux-x86_64         (JNI bindings, a few MB)
#       CUDA_REDIST_JAR org.bytedeco:cuda:11.6-8.3-1.5.7:linux-x86_64-redist  (libcudart 11.6, NCCL 2.11.4; large)
#     found in ~/.m2 unless these variables name them. Fetch them where there is network with
#       mvn dependency:get -Dartifact=org.bytedeco:cuda:11.6-8.3-1.5.7:jar:linux-x86_64-redist
#     (and :linux-x86_64 likewise), then copy ~/.m2/repository/org/bytedeco/cuda over.
#     CUDA_REDIST_JAR=none uses a system CUDA 11.x runtime (libcudart.so.11.0) and libnccl.so.2 on
#     LD_LIBRARY_PATH instead; a CUDA 12/13-only machine does not have libcudart.so.11.0.
#   - an NVIDIA driver new enough for CUDA 11.6 (any current one).
#
# The build is the normal CPU build: ND4J 1.0.0-M2.1's CUDA binaries have no Hopper (sm_90) code, so arrays
# stay in host memory (nd4j-native) and only NCCL runs on the GPUs, through device staging buffers.
#
# What it checks:
#   - one GPU:  a world of one rank runs every collective through NCCL (staging, buffer growth, a sub-group).
#     NCCL refuses two ranks of one communicator on one GPU, so a one-GPU machine checks nothing between ranks.
#   - two GPUs or more: two ranks (two threads of one JVM on GPUs 0 and 1, rendezvous over tcp on loopback)
#     pass the same collective checks as the tcp backend (all-reduce SUM/AVG/MAX, reduce-scatter, all-gather,
#     broadcast, tagged send/recv, sub-groups), count the same bytes, and a rank that never calls makes the
#     other time out with a clear message and an aborted NCCL communicator.
#   - the tests that need no GPU (imitated NCCL) run too.
# It fails if the backend reports itself unavailable (the reason is printed) or a GPU test was skipped that
# this machine's GPU count should run. NCCL 2.11.4 predates Hopper: if it carries no sm_90 code its PTX is
# compiled at first use (a slow first run), and if that fails the first collective reports a CUDA error here.
#
# Usage: tools/device/nccl_check.sh      (from anywhere; exit status 0 = all GPU checks that apply passed)
set -euo pipefail
cd "$(dirname "$0")/../.."

M2="${M2_REPO:-$HOME/.m2/repository}"
V=11.6-8.3-1.5.7
JNI="${CUDA_JNI_JAR:-$M2/org/bytedeco/cuda/$V/cuda-$V-linux-x86_64.jar}"
REDIST="${CUDA_REDIST_JAR:-$M2/org/bytedeco/cuda/$V/cuda-$V-linux-x86_64-redist.jar}"
SUFFIX="${BUILD_SUFFIX:--ncclcheck}"
MVN_FLAGS="${MVN_FLAGS:--o}"

GPUS=0
if command -v nvidia-smi >/dev/null; then
  nvidia-smi -L || true
  GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
else
  echo "nvidia-smi not found"
fi

[ -f "$JNI" ] || { echo "missing $JNI (the presets' JNI jar; see the top of this script)" >&2; exit 2; }
CP="$JNI"
if [ "$REDIST" != none ]; then
  [ -f "$REDIST" ] || { echo "missing $REDIST (libcudart + libnccl; see the top of this script, or CUDA_REDIST_JAR=none)" >&2; exit 2; }
  CP="$CP,$REDIST"
fi

mvn -B -q $MVN_FLAGS -Dbuild.suffix="$SUFFIX" install -DskipTests -pl collie-core,collie-parallel -am
LOG="collie-parallel/target$SUFFIX/nccl_check.log"
set +e
mvn -B $MVN_FLAGS -Dbuild.suffix="$SUFFIX" -pl collie-parallel test -Dtest=NcclCommunicatorTest \
    -Dsurefire.failIfNoSpecifiedTests=false -Dmaven.test.additionalClasspath="$CP" >"$LOG" 2>&1
rc=$?
set -e
grep -E 'nccl backend|Tests run|FAIL|ERROR\]|expected|Exception' "$LOG" | head -60 || true
echo "(full log: $LOG)"

REPORT="collie-parallel/target$SUFFIX/surefire-reports/TEST-dev.collie.parallel.comm.NcclCommunicatorTest.xml"
[ -f "$REPORT" ] || { echo "no test report at $REPORT" >&2; exit 1; }
skipped() { grep -A1 "<testcase name=\"$1\"" "$REPORT" | grep -q '<skipped'; }
status=$rc
if skipped aWorldOfOneRunsEveryCollectiveThroughNcclOnTheGpu; then
  echo "FAILED: the nccl backend reported itself unavailable:" >&2
  grep -A1 '<testcase name="aWorldOfOneRunsEveryCollectiveThroughNcclOnTheGpu"' "$REPORT" | tail -1 >&2
  status=1
elif [ "$GPUS" -ge 2 ] && skipped twoRanksOnTwoGpusMeetTheCommunicatorContract; then
  echo "FAILED: $GPUS GPUs are listed, but the two-rank NCCL test was skipped" >&2
  status=1
fi
if [ "$status" -eq 0 ]; then
  if [ "$GPUS" -ge 2 ]; then echo "nccl check passed: 1-rank and 2-rank (GPUs 0 and 1) NCCL collectives";
  else echo "nccl check passed: 1-rank NCCL collectives only (one GPU; two ranks need two GPUs)"; fi
fi
exit "$status"
