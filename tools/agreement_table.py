#!/usr/bin/env python3
"""Markdown table of the figures the numerical tests record (dev.collie.core.testing.Agreement), one column a setting.

Run the suite once per setting with COLLIE_AGREEMENT_LOG=<dir>/<setting>.tsv (each line: test, what, measured,
bound), then:

    python3 tools/agreement_table.py <dir>/default.tsv <dir>/avx2.tsv ...

Rows are test methods, the figure (its description without the parallel layout) and its bound; each cell is the
worst figure of that row under that setting. The layouts of one method are folded into one row (their worst). With --by-class first: one row per test class, each cell the largest
measured/bound of its figures under that setting.
"""
import os
import re
import sys
from collections import OrderedDict


LAYOUT = re.compile(r"\b(dp \d+|tp=?\s?\d+|pp \d+|zero \d+|tied (true|false)|tied|untied|× pp \d+)\b")


def kind(what):
    """The figure without the layout it was measured on: the cases of one method fold into one row per figure."""
    return re.sub(r"\s+", " ", LAYOUT.sub("", what).replace(" ×", "")).replace(" :", ":").strip()


def by_class(paths):
    """One row per test class: the largest measured/bound of its figures under each setting (1.0 = at the bound)."""
    settings = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    rows = OrderedDict()
    counts = {}
    for s, path in zip(settings, paths):
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 4 or float(parts[3]) <= 0:
                    continue
                cls = parts[0].split(".")[0]
                ratio = float(parts[2]) / float(parts[3])
                row = rows.setdefault(cls, {})
                row[s] = max(row.get(s, 0.0), ratio)
                if s == settings[0]:
                    counts[cls] = counts.get(cls, 0) + 1
    print("| test class | figures | " + " | ".join(settings) + " |")
    print("|---|---|" + "---|" * len(settings))
    for cls in sorted(rows):
        print(f"| {cls} | {counts.get(cls, 0)} | " + " | ".join(fmt(rows[cls].get(s)) for s in settings) + " |")


def main(paths):
    settings = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    rows = OrderedDict()
    for s, path in zip(settings, paths):
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 4:
                    continue
                test, what, measured, bound = parts[0], parts[1], float(parts[2]), float(parts[3])
                key = (test, kind(what), bound)
                row = rows.setdefault(key, {"bound": bound, "cells": {}})
                row["cells"][s] = max(row["cells"].get(s, 0.0), measured)
    print("| test | figure | " + " | ".join(settings) + " | bound |")
    print("|---|---|" + "---|" * len(settings) + "---|")
    for (test, k, _), row in sorted(rows.items()):
        cells = [fmt(row["cells"].get(s)) for s in settings]
        print(f"| {test} | {k} | " + " | ".join(cells) + f" | {fmt(row['bound'])} |")


def fmt(x):
    if x is None:
        return "–"
    if x == 0:
        return "0"
    if x == int(x) and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.2g}"


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] == "--by-class":
        by_class(sys.argv[2:])
    else:
        main(sys.argv[1:])
