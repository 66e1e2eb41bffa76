#!/usr/bin/env python3
"""What `collie train --monitor csv,jsonl,tensorboard` costs a step: runs of the same training without and with it,
alternated, and the median wall time between consecutive steps (stamped as each progress line arrives; it holds
everything a step does, callbacks included), plus the monitor's own measure of its time (its log line at the end).

    python3 tools/bench/monitor_overhead.py [--pairs 3] [--steps 60] [--skip 10] [-- extra train options]

Env: JAVA (default java), JAVA_OPTS (default -Xmx1g), COLLIE_JAR (default examples/target/collie.jar).  Trains the
small preset on examples/data/moby-dick.txt (seq 256, micro-batch 4, an evaluation every 20 steps); standard library only.
"""

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STEP = re.compile(r"^step (\d+)/(\d+) ")
MONITOR = re.compile(r"monitor: ([0-9.]+) ms a step, ([0-9.]+)% of the steps' time")


def run(args, steps, skip, monitor, work):
    java = os.environ.get("JAVA", "java")
    opts = shlex.split(os.environ.get("JAVA_OPTS", "-Xmx1g"))
    jar = os.environ.get("COLLIE_JAR", os.path.join(ROOT, "examples", "target", "collie.jar"))
    cmd = [java, *opts, "-cp", jar, "dev.collie.examples.cli.CollieCli", "train", "--preset", "small",
           "--data", os.path.join(ROOT, "examples", "data", "moby-dick.txt"), "--tokenizer", os.path.join(ROOT, "examples", "data", "tokenizer"),
           "--seq", "256", "--micro-batch", "4", "--steps", str(steps), "--eval-fraction", "0.01", "--eval-every", "20",
           "--log-every", "1", "--save", os.path.join(work, "model-%d" % time.monotonic_ns()), *args]
    if monitor:
        cmd += ["--monitor", "csv,jsonl,tensorboard", "--monitor-dir", os.path.join(work, "mon-%d" % time.monotonic_ns())]
    stamps = {}
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        for line in p.stdout:
            m = STEP.match(line)
            if m:
                stamps[int(m.group(1))] = time.monotonic()
        if p.wait() != 0:
            err.seek(0)
            sys.exit("collie train failed:\n" + err.read().decode())
        err.seek(0)
        own = MONITOR.search(err.read().decode())
    gaps = [stamps[k] - stamps[k - 1] for k in range(skip + 1, steps + 1) if k in stamps and k - 1 in stamps]
    return statistics.median(gaps), (float(own.group(1)), float(own.group(2))) if own else None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--skip", type=int, default=10, help="warm-up steps left out of the median")
    p.add_argument("extra", nargs="*")
    a = p.parse_args()
    off, on, own = [], [], []
    with tempfile.TemporaryDirectory() as work:
        for i in range(a.pairs):
            for monitor in ((False, True) if i % 2 == 0 else (True, False)):
                median, mine = run(a.extra, a.steps, a.skip, monitor, work)
                (on if monitor else off).append(median)
                if mine:
                    own.append(mine)
                print("pair %d, monitor %-3s: median step %.4f s%s" % (i + 1, "on" if monitor else "off", median,
                      "; the monitor's own: %.3f ms a step, %.3f%%" % mine if mine else ""), flush=True)
    print("median step without: %s s; with: %s s; with / without (means) %.4f"
          % (", ".join("%.4f" % x for x in off), ", ".join("%.4f" % x for x in on),
             statistics.mean(on) / statistics.mean(off)))
    if own:
        print("the monitor's own time: %.3f ms a step (%.3f%% of the step's time), the mean of %d runs"
              % (statistics.mean(o[0] for o in own), statistics.mean(o[1] for o in own), len(own)))


if __name__ == "__main__":
    main()
