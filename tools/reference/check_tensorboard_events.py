#!/usr/bin/env python3
"""Read TensorBoard event files with TensorBoard's own reader and print what it sees; optionally compare them with
a monitor's metrics.jsonl.

    /work/pyref/bin/python tools/reference/check_tensorboard_events.py PATH [--jsonl FILE] [--quiet]

PATH is an events.out.tfevents.* file or a run directory (every event file in it).  For each scalar tag it prints
the steps and values tensorboard.backend.event_processing.event_accumulator.EventAccumulator read.  With --jsonl
(a collie monitor's metrics.jsonl: {"step", "wall_time", "<tag>": value, ...} a line) it checks that TensorBoard
has exactly the same tags, and for each the same steps in the same order with the JSONL values rounded to float32
(TensorBoard's simple_value; null = NaN), and the same wall times; it prints "tensorboard agrees with FILE: ..." and
exits 0, or lists the differences and exits 1.  Needs tensorboard (2.21.0 was used) and numpy.
"""

import argparse
import json
import math
import sys

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def read(path):
    acc = EventAccumulator(path, size_guidance={"scalars": 0})   # 0: keep every event
    acc.Reload()
    return {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def compare(scalars, jsonl):
    expected = {}
    with open(jsonl) as f:
        for n, line in enumerate(f, 1):
            rec = json.loads(line)
            for key, value in rec.items():
                if key in ("step", "wall_time"):
                    continue
                v = float("nan") if value is None else float(np.float32(value))
                expected.setdefault(key, []).append((rec["step"], rec["wall_time"], v))
    problems = []
    if set(expected) != set(scalars):
        problems.append("tags differ: only in TensorBoard %s, only in JSONL %s"
                        % (sorted(set(scalars) - set(expected)), sorted(set(expected) - set(scalars))))
    points = 0
    for tag in sorted(set(expected) & set(scalars)):
        got = [(e.step, e.wall_time, e.value) for e in scalars[tag]]
        want = expected[tag]
        if len(got) != len(want):
            problems.append("%s: %d points in TensorBoard, %d in JSONL" % (tag, len(got), len(want)))
            continue
        for (gs, gw, gv), (ws, ww, wv) in zip(got, want):
            points += 1
            if gs != ws or not same(gv, wv) or abs(gw - ww) > 1e-6:
                problems.append("%s: TensorBoard (step %d, %r, wall %r) vs JSONL (step %d, %r, wall %r)"
                                % (tag, gs, gv, gw, ws, wv, ww))
    return problems, points


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path")
    p.add_argument("--jsonl")
    p.add_argument("--quiet", action="store_true", help="print only the tag list and the verdict")
    a = p.parse_args()
    scalars = read(a.path)
    for tag in sorted(scalars):
        ev = scalars[tag]
        print("%s: %d points" % (tag, len(ev)))
        if not a.quiet:
            for e in ev:
                print("    step %d  value %r  wall_time %.3f" % (e.step, e.value, e.wall_time))
    if a.jsonl:
        problems, points = compare(scalars, a.jsonl)
        if problems:
            print("tensorboard disagrees with %s:" % a.jsonl)
            for pr in problems[:50]:
                print("  " + pr)
            sys.exit(1)
        print("tensorboard agrees with %s: %d tags, %d points (same steps, float32 values, wall times)"
              % (a.jsonl, len(scalars), points))


if __name__ == "__main__":
    main()
