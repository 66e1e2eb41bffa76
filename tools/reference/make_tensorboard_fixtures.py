#!/usr/bin/env python3
"""Generate the TensorBoard event file that TensorBoardSinkTest compares the Java writer with.

    /work/pyref/bin/python tools/reference/make_tensorboard_fixtures.py

Made with torch 2.13.0+cpu (torch.utils.tensorboard.SummaryWriter) and tensorboard 2.21.0.  Re-runnable: it rewrites
the one file it owns (its file_version event carries the wall time of the run, which the Java test reads back).

Writes collie-core/src/test/resources/monitor/torch.tfevents: the records of SCALARS below, each written with
SummaryWriter.add_scalar(tag, value, global_step=step, walltime=wall), in this order.  TensorBoardSinkTest hard-codes
the same list and writes it through TensorBoardSink, expecting the same bytes.
"""

import glob
import math
import os
import shutil
import tempfile

from torch.utils.tensorboard import SummaryWriter

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO_ROOT, "collie-core", "src", "test", "resources", "monitor", "torch.tfevents")

# (step, wall time, tag, value): step 0 (left out of the message, proto3's default), a step past one varint byte and
# one past four, values float32 rounds (0.1, 1/3), a NaN, a negative, a tiny and a huge one, an eval tag
SCALARS = [
    (0, 1733500000.25, "train/loss", 2.5),
    (1, 1733500001.5, "train/loss", 2.25),
    (1, 1733500001.5, "train/lr", 0.001),
    (1, 1733500001.5, "train/tgs", 1234.5678),
    (1, 1733500001.5, "train/grad_norm", float("nan")),
    (300, 1733500300.125, "train/loss", 0.1),
    (300, 1733500300.125, "train/memory_mib", 1.0 / 3.0),
    (300, 1733500302.0, "eval/loss", -0.75),
    (300, 1733500302.0, "eval/ppl", math.exp(2.5)),
    (123456789, 1733599999.875, "train/lr", 1e-7),
    (123456789, 1733599999.875, "train/tokens", 3.0e38),
]


def main():
    tmp = tempfile.mkdtemp()
    try:
        w = SummaryWriter(log_dir=tmp)
        for step, wall, tag, value in SCALARS:
            w.add_scalar(tag, value, global_step=step, walltime=wall)
        w.close()
        files = glob.glob(os.path.join(tmp, "events.out.tfevents.*"))
        assert len(files) == 1, files
        os.makedirs(os.path.dirname(OUT), exist_ok=True)
        shutil.copyfile(files[0], OUT)
    finally:
        shutil.rmtree(tmp)
    print(OUT, os.path.getsize(OUT), "bytes,", len(SCALARS), "scalars")


if __name__ == "__main__":
    main()
