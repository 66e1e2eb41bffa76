#!/usr/bin/env python3
"""Per-op breakdown of collie training steps from a flight recording of `collie bench --jfr FILE`.

    examples/bin/collie bench --hidden 768 --layers 12 ... --steps 6 --jfr /tmp/step.jfr
    python3 tools/bench/step_profile.py /tmp/step.jfr [--step-ms 3400]

Reads the execution and native-method samples of the threads that run steps (main, collie-worker, and the
ForkJoinPool threads of the optimizer's parallel update) with the JDK's
`jfr` tool and attributes each to an op: the innermost kernel call on its stack (Kernels.matmul, softmax, rmsNorm ...)
together with the layer that made it (Linear, Attention, the LM head), or the innermost collie frame when no kernel is
on the stack (the optimizer's update, masks, copies). A thread in a native call (an ND4J or oneDNN op) is sampled as
native. JFR samples up to five threads running Java code but only one thread in native code per period, so each
native sample is weighted by --native-weight (default: the number of CPUs, the worker threads of a default bench run,
which spend most of their time in native GEMMs side by side); a thread waiting for the others (a worker's join, a lock) counts as waiting and is left out of the shares,
so the shares are of busy thread time. With --step-ms (the median step of the same run) each op's share is also
given as milliseconds per step. Python 3 standard library only; `jfr` comes from the JDK on the PATH (or $JAVA_HOME).
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys

KERNEL_CLASSES = ("Nd4jKernels", "DnnlKernels", "SmallArrayKernels", "VectorKernels", "ForwardingKernels", "Dnnl")
LAYERS = ("Linear", "Attention", "RMSNorm", "LayerNorm", "SwiGluMlp", "GeluMlp", "RotaryEmbedding", "CausalLmLoss",
          "Embedding", "TiedEmbedding")
WAITING = ("park", "wait", "sleep", "join", "await", "take", "get")  # innermost JDK frames of a waiting thread


def frames(event):
    out = []
    for f in event["values"]["stackTrace"]["frames"]:
        m = f["method"]
        cls = m["type"]["name"].replace("/", ".")
        out.append((cls, m["name"]))
    return out


def simple(cls):
    return cls.rsplit(".", 1)[-1].split("$")[0]


def category(stack):
    """The op a sample belongs to, or None for a thread that is waiting."""
    if stack and stack[0][0].startswith(("jdk.internal.misc.Unsafe", "java.lang.Object", "java.lang.Thread",
                                         "java.util.concurrent")) and stack[0][1] in WAITING:
        return None
    collie = [(simple(c), m) for c, m in stack if c.startswith("dev.collie")]
    if not collie:
        return "other (JDK/ND4J outside collie)"
    # the outermost call into a Kernels implementation: the op the layer asked for (a forwarding or oneDNN kernel
    # may call others below it)
    kernel = next(((c, m) for c, m in reversed(collie) if c in KERNEL_CLASSES and c != "Dnnl"), None)
    layer = next((c for c, m in collie if c in LAYERS), None)
    in_layer_stack = any(c in ("DecoderLayer", "LayerStack") for c, m in collie)
    optimizer = next((c for c, m in collie if c in ("AdamW", "Lion", "Adan", "SophiaG", "Lomo", "AdaLomo",
                                                     "PerParameterOptimizer", "FusedUpdate")), None)
    if optimizer is not None:
        return "optimizer (%s)" % optimizer
    if kernel is not None:
        op = kernel[1].split("$")[0]
        if op in ("matmul", "productOut"):
            if layer == "Attention" and not any(c == "Linear" for c, m in collie):
                return "GEMM attention (scores, p·v)"
            if layer == "Linear" and not in_layer_stack:
                return "GEMM LM head"
            return "GEMM linear projections"
        if op.startswith(("softmax", "causalSoftmax")):
            return "softmax (forward + backward)"
        if op.startswith("rmsNorm"):
            return "RMSNorm (forward + backward)"
        if op.startswith("siluMul"):
            return "SwiGLU (forward + backward)"
        if op.startswith("rotary"):
            return "rotary (forward + backward)"
        if op.startswith("crossEntropy"):
            return "cross-entropy (with its gradient)"
        if op in ("gatherRows", "scatterAddRows", "scatterAdd", "gather"):
            return "embedding gather/scatter"
        return "other kernel: " + op
    inner = collie[0]
    if inner[0] == "Attention" and inner[1] in ("addMask", "causalMask", "paddedMask"):
        return "attention mask"
    if layer is not None:
        return "%s (outside kernels: copies, adds)" % layer
    return "other collie: %s.%s" % inner


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jfr", help="the file `collie bench --jfr` wrote")
    ap.add_argument("--step-ms", type=float, help="median step time of the same run, to print ms per step")
    ap.add_argument("--native-weight", type=float, default=os.cpu_count(),
                    help="weight of a native-method sample against a Java one (default: the CPU count)")
    ap.add_argument("--top", type=int, default=0, help="also print the N most sampled innermost frames")
    args = ap.parse_args()
    jfr = shutil.which("jfr") or os.path.join(os.environ.get("JAVA_HOME", ""), "bin", "jfr")
    out = subprocess.run([jfr, "print", "--events", "jdk.ExecutionSample,jdk.NativeMethodSample", "--stack-depth",
                          "96", "--json", args.jfr], check=True, capture_output=True, text=True).stdout
    events = json.loads(out)["recording"]["events"]
    counts = collections.Counter()
    inner = collections.Counter()
    waiting = 0
    for e in events:
        thread = (e["values"].get("sampledThread") or {}).get("javaName") or ""
        if thread != "main" and not thread.startswith(("collie-worker", "ForkJoinPool")):
            continue
        stack = frames(e)
        c = category(stack)
        if c is None:
            waiting += 1
            continue
        weight = args.native_weight if e["type"] == "jdk.NativeMethodSample" else 1.0
        counts[c] += weight
        if args.top:
            inner["%s.%s" % stack[0] if stack else "?"] += weight
    total = sum(counts.values())
    if total == 0:
        sys.exit("no busy samples of the step threads in " + args.jfr)
    print("| op | share of busy thread time | ms per step |" if args.step_ms else "| op | share of busy thread time |")
    print("|---|---|---|" if args.step_ms else "|---|---|")
    for c, n in counts.most_common():
        share = n / total
        if args.step_ms:
            print("| %s | %.1f %% | %.0f |" % (c, 100 * share, share * args.step_ms))
        else:
            print("| %s | %.1f %% |" % (c, 100 * share))
    print("\n%d busy samples (native ones weighted %g), %d waiting (left out)" % (total, args.native_weight, waiting),
          file=sys.stderr)
    for f, n in inner.most_common(args.top):
        print("%6.1f %%  %s" % (100 * n / total, f), file=sys.stderr)


if __name__ == "__main__":
    main()
