"""Table-builder throughput: stacked (batched) training of K architectures vs one at a time, in one process.

Both builders train the same cells (a block of the stacked shard order, which groups cells by operations,
as `nb360 table build --stack K` shards them) with the v2 embedded table's protocol (generated Darcy Flow,
C=4, N=1, batch 32, SGD lr 0.05, 4 epochs; v3 trains 24 epochs at lr 0.02: six times the steps, the same
cost per step, so the same ratios) through `nb360.build.worker.run_shard`, one torch thread, each
variant measured right after the others in this process. Figures: process CPU seconds per cell (what a
core spends; robust on a shared machine) and wall seconds per cell, with the ratio to one-at-a-time.
Cells per minute on a 2-core machine with two workers = 2 x 60 / (CPU seconds per cell) when the
cores are free.

  .venv/bin/python benchmarks/builder_bench.py --data .embedded-build/data [--cells 16] [--stacks 4 8 16]

`--steps-only` times training steps alone at NB201's shape (C=16, N=5, 3x32x32 inputs, 100 classes, batch
256; SYNTHETIC random inputs and labels, speed only), K archs one after another vs stacked, on `--device`
(the GPU figure of the issue: `--steps-only --device cuda`, run by benchmarks/gpu_check.sh).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402


def steps_only(args: argparse.Namespace) -> None:
    """Training-step time per arch: K NB201 networks one after another vs one stack of K."""
    import torch
    import torch.nn.functional as F

    from nb360.build.spec import BuildSpec
    from nb360.models import build
    from nb360.models.stacked import StackedNB201

    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    archs = BuildSpec(task="cifar100", data_root="", epochs=1, archs="unique", stack=16).shard_order()[args.start:]
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 100, (args.batch,), device=device)

    def timed(models: list, stacked: bool) -> float:
        opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
                for m in models]
        for rep in range(args.repeats + 1):
            if rep == 1:  # the first round warms up (allocator, cuDNN / oneDNN primitives)
                sync()
                start = time.perf_counter()
            for model, opt in zip(models, opts):
                opt.zero_grad(set_to_none=True)
                out = model(x)
                if stacked:
                    k = out.shape[1]
                    loss = F.cross_entropy(out.reshape(-1, 100), y.repeat_interleave(k), reduction="none").view(-1, k)
                    loss.mean(0).sum().backward()
                else:
                    F.cross_entropy(out, y).backward()
                opt.step()
        sync()
        return (time.perf_counter() - start) / args.repeats

    print(f"machine: {machine('torch')}; device {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}; C={args.C}, "
          f"N={args.N}, batch {args.batch}, 3x32x32, SYNTHETIC data", flush=True)
    print("| K | one at a time, ms per arch-step | stacked, ms per arch-step | speed-up |")
    print("|---|---|---|---|")
    for k in args.stacks:
        nets = [build("cifar100", arch=a, C=args.C, N=args.N).to(device) for a in archs[:k]]
        alone = timed(nets, False) / k
        stacked = timed([StackedNB201(nets).to(device)], True) / k
        print(f"| {k} | {1000 * alone:.1f} | {1000 * stacked:.1f} | {alone / stacked:.2f}× |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a generated Darcy Flow set (nb360 data generate darcyflow)")
    parser.add_argument("--steps-only", action="store_true", help="training steps at NB201's shape (see above)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("-C", type=int, default=16)
    parser.add_argument("-N", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cells", type=int, default=16)
    parser.add_argument("--stacks", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--start", type=int, default=2000, help="where in the stacked shard order the block starts")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1, help="runs of every variant, interleaved (default 1)")
    parser.add_argument("--layouts", nargs="+", default=["channels-last"], choices=["channels-last", "channels-first"],
                        help="memory layouts of the stacks (channels-last: the CPU default)")
    args = parser.parse_args()
    from nb360.devices import require_available
    from nb360.errors import InputError

    try:
        require_available(args.device)
    except InputError as exc:
        parser.error(str(exc))
    if args.steps_only:
        steps_only(args)
        return
    if not args.data:
        parser.error("--data is required (or --steps-only)")

    import torch

    from nb360.build.spec import BuildSpec
    from nb360.build.worker import run_shard
    from nb360.models import stacked

    torch.set_num_threads(1)
    base = {"task": "darcyflow", "data_root": args.data, "epochs": args.epochs, "channels": 4, "cells": 1,
            "batch_size": 32, "lr": 0.05, "archs": "unique"}
    archs = BuildSpec(**base, stack=16).shard_order()[args.start:args.start + args.cells]
    run_shard(BuildSpec(**base, stack=2).to_dict(), archs[:2], 777)  # warm-up: data, oneDNN primitives
    print(f"machine: {machine('torch')}; load average {os.getloadavg()}; {len(archs)} cells, "
          f"{args.epochs} epochs", flush=True)
    variants = [(1, "")] + [(k, layout) for layout in args.layouts for k in args.stacks]
    times: dict[tuple[int, str], list[tuple[float, float]]] = {v: [] for v in variants}
    ratios: dict[tuple[int, str], list[float]] = {v: [] for v in variants}
    for round_ in range(args.rounds):
        # each round runs every variant once, in a rotated order, and each variant's ratio is taken against
        # the reference of the same round: a shared machine's speed drifts by tens of percent between minutes
        order = variants[round_ % len(variants):] + variants[:round_ % len(variants)]
        this_round = {}
        for stack, layout in order:
            stacked.CHANNELS_LAST = layout != "channels-first"
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            run_shard(BuildSpec(**base, stack=stack).to_dict(), archs, 777)
            cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
            this_round[(stack, layout)] = cpu / len(archs)
            times[(stack, layout)].append((cpu / len(archs), wall / len(archs)))
            print(f"  round {round_ + 1} stack {stack:3} {layout}: {cpu / len(archs):.3f} CPU s/cell, "
                  f"{wall / len(archs):.3f} wall s/cell", flush=True)
        for v in variants:
            ratios[v].append(this_round[(1, "")] / this_round[v])
    stacked.CHANNELS_LAST = True
    print(f"load average after: {os.getloadavg()}\n")
    print(f"| builder | CPU s per cell (median of {args.rounds}) | vs one at a time (median of per-round ratios; "
          "range) | wall s per cell | cells/min on 2 free cores |")
    print("|---|---|---|---|---|")
    for v in variants:
        stack, layout = v
        name = "one at a time (reference)" if stack == 1 else f"stacked, K = {stack}, {layout}"
        cpu = statistics.median(t[0] for t in times[v])
        wall = statistics.median(t[1] for t in times[v])
        r = ratios[v]
        print(f"| {name} | {cpu:.3f} | {statistics.median(r):.2f}× ({min(r):.2f}–{max(r):.2f}) | {wall:.3f} "
              f"| {120 / cpu:.0f} |")

if __name__ == "__main__":
    main()
