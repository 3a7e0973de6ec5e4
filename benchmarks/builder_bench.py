"""Table-builder throughput: stacked (batched) training of K architectures vs one at a time, in one process.

Both builders train the same cells (a block of the stacked shard order, which groups cells by operations,
as `nb360 table build --stack K` shards them) with the embedded table's protocol (generated Darcy Flow,
C=4, N=1, batch 32, SGD lr 0.05, 4 epochs) through `nb360.build.worker.run_shard`, one torch thread, each
variant measured right after the others in this process. Figures: process CPU seconds per cell (what a
core spends; robust on a shared machine) and wall seconds per cell, with the ratio to one-at-a-time.
Cells per minute on a 2-core machine with two workers = 2 x 60 / (CPU seconds per cell) when the
cores are free.

  .venv/bin/python benchmarks/builder_bench.py --data .embedded-build/data [--cells 16] [--stacks 4 8 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a generated Darcy Flow set (nb360 data generate darcyflow)")
    parser.add_argument("--cells", type=int, default=16)
    parser.add_argument("--stacks", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--start", type=int, default=2000, help="where in the stacked shard order the block starts")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()

    import torch

    from nb360.build.spec import BuildSpec
    from nb360.build.worker import run_shard

    torch.set_num_threads(1)
    base = {"task": "darcyflow", "data_root": args.data, "epochs": args.epochs, "channels": 4, "cells": 1,
            "batch_size": 32, "lr": 0.05, "archs": "unique"}
    archs = BuildSpec(**base, stack=16).shard_order()[args.start:args.start + args.cells]
    run_shard(BuildSpec(**base, stack=2).to_dict(), archs[:2], 777)  # warm-up: data, oneDNN primitives
    print(f"machine: {machine('torch')}; load average {os.getloadavg()}; {len(archs)} cells, "
          f"{args.epochs} epochs", flush=True)
    rows = []
    for stack in [1, *args.stacks]:
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        run_shard(BuildSpec(**base, stack=stack).to_dict(), archs, 777)
        cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
        rows.append((stack, cpu / len(archs), wall / len(archs)))
        print(f"  stack {stack:3}: {cpu / len(archs):.3f} CPU s/cell, {wall / len(archs):.3f} wall s/cell", flush=True)
    print(f"load average after: {os.getloadavg()}\n")
    print("| builder | CPU s per cell | vs one at a time | wall s per cell | vs one at a time | cells/min on 2 free cores |")
    print("|---|---|---|---|---|---|")
    ref_cpu, ref_wall = rows[0][1], rows[0][2]
    for stack, cpu, wall in rows:
        name = "one at a time (reference)" if stack == 1 else f"stacked, K = {stack}"
        print(f"| {name} | {cpu:.3f} | {ref_cpu / cpu:.2f}× | {wall:.3f} | {ref_wall / wall:.2f}× | {120 / cpu:.0f} |")


if __name__ == "__main__":
    main()
