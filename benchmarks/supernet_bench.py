"""Supernet step benchmark: the fused NB201 supernet against the eager reference and torch.compile of it.

Measures, in one run and on each device asked for, the DARTS weight step (forward, loss, backward,
SGD step) and the architecture step (forward, loss, backward to α only, Adam step) of

    eager          the reference supernet (plain PyTorch, AutoDL's ops; `fused=False`)
    fused          the fused supernet (`fused=True`, the device's default conv grouping)
    fused-<g>      the fused supernet with the other conv grouping ('single' / 'by_kernel')
    compile        torch.compile(reference supernet) (inductor, default mode)
    fused+compile  torch.compile(fused supernet) (inductor, default mode)

The architecture step asks for α's gradient only: `backward(inputs=[alpha])` (`--arch-step inputs`,
as nb360's DARTS/GAEA do with torch.autograd.grad), or with every weight's requires_grad switched off
for the step (`--arch-step frozen`, `Supernet.frozen_weights()`). Eager autograd and the fused op then
skip the weight gradients either way; a torch.compile'd graph computes every gradient its inputs
require, so only `frozen` spares it the weight gradients (at the price of a second compiled graph).

on the NB201 DARTS configuration (C=16, N=5, batch 64, 3x32x32, 10 classes; SYNTHETIC random
inputs and labels: only speed and memory are measured). Variants run interleaved (each round starting at the next variant), round after
round, so a busy machine slows them alike; each figure is the median (and best) over all timed
steps. Memory: the step's peak above the memory resident before it (CUDA: the caching allocator's
peak; CPU: peak RSS, VmHWM after a reset, above a malloc_trim'd baseline) and the bytes of
activations saved for backward (storage-deduplicated, via saved_tensors_hooks).

    .venv/bin/python benchmarks/supernet_bench.py                    # CPU (+ CUDA when visible)
    .venv/bin/python benchmarks/supernet_bench.py --quick            # small smoke run
    .venv/bin/python benchmarks/supernet_bench.py --device cuda --rounds 5

Prints a Markdown table (ratios against the eager reference of the same run), the fused path's
ratios against torch.compile, the compiled variants' graph counts (graph breaks, recompiles during
the timed steps, inductor cache hits) and the machine with its load average.
On a machine shared with other jobs, run multi-threaded CPU measurements with OMP_WAIT_POLICY=PASSIVE
(spinning OpenMP threads that lose their core to another job stall every parallel region), or use
`--threads 1 --clock process`.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import datetime
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from _common import cpu_model
from nb360.models import Supernet
from nb360.ops import fused_kernels_available

GROUPINGS = {"cpu": ("by_kernel", "single"), "cuda": ("single", "by_kernel")}  # (default, other)


@dataclass
class Variant:
    name: str
    net: torch.nn.Module
    module: Supernet  # the underlying supernet (for α and the weight parameters)
    w_opt: torch.optim.Optimizer
    a_opt: torch.optim.Optimizer
    weight_times: list[float] = field(default_factory=list)
    arch_times: list[float] = field(default_factory=list)
    first_step_s: float = 0.0
    weight_peak: float = float("nan")
    arch_peak: float = float("nan")
    saved_bytes: float = float("nan")
    compiled: bool = False
    graphs: int = 0            # graphs Dynamo compiled during the warm-up steps
    graph_breaks: int = 0
    cache: str = ""            # inductor FX-graph cache hits / misses during the warm-up
    late_compiles: int = 0     # graphs compiled during the timed steps (recompiles)


# ---------------------------------------------------------------------------------------------- memory
def _rss_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


class PeakMemory:
    """Peak memory of a block above what was resident when it started (bytes)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = float("nan")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            try:
                ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap back so RSS is what is live
            except OSError:
                pass
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (peak RSS) to the current RSS
            self.base = _rss_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self.peak = _rss_kib("VmHWM") * 1024 - self.base


def saved_activation_bytes(variant: Variant, x: torch.Tensor, y: torch.Tensor) -> int:
    """Bytes of distinct storages autograd saves for backward during one training forward."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    variant.w_opt.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(variant.net(x), y)
    loss.backward()
    variant.w_opt.zero_grad(set_to_none=True)
    params = {p.untyped_storage().data_ptr() for p in variant.module.parameters()}
    return sum(n for ptr, n in storages.items() if ptr not in params)  # activations, not weights


# ---------------------------------------------------------------------------------------------- steps
def weight_step(v: Variant, x: torch.Tensor, y: torch.Tensor) -> None:
    v.w_opt.zero_grad(set_to_none=True)
    F.cross_entropy(v.net(x), y).backward()
    v.w_opt.step()


ARCH_STEP = "inputs"  # --arch-step


def arch_step(v: Variant, x: torch.Tensor, y: torch.Tensor) -> None:
    # First-order DARTS / GAEA: gradients for α only.
    v.a_opt.zero_grad(set_to_none=True)
    if ARCH_STEP == "inputs":
        F.cross_entropy(v.net(x), y).backward(inputs=v.module.arch_parameters())
    else:  # "frozen": the weights do not require grad during the step (Supernet.frozen_weights)
        with v.module.frozen_weights():
            F.cross_entropy(v.net(x), y).backward()
    v.a_opt.step()


def dynamo_counters() -> tuple[int, int, int, int]:
    """(graphs compiled, graph breaks, FX-graph cache hits, misses) so far in this process."""
    from torch._dynamo.utils import counters

    return (counters["stats"]["unique_graphs"], sum(counters["graph_break"].values()),
            counters["inductor"]["fxgraph_cache_hit"], counters["inductor"]["fxgraph_cache_miss"])


CLOCK = time.perf_counter  # --clock process: this process's CPU time (robust to a busy machine at 1 thread)


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = CLOCK()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return CLOCK() - start


def make_variants(args: argparse.Namespace, device: torch.device) -> list[Variant]:
    torch.manual_seed(0)
    base = Supernet(10, 3, C=args.C, N=args.N, fused=False).to(device)
    default, other = GROUPINGS[device.type]
    specs: list[tuple[str, bool, str | None, bool]] = [("eager", False, None, False)]
    if fused_kernels_available(device):
        specs += [("fused", True, default, False), (f"fused-{other}", True, other, False)]
    else:
        print(f"note: no fused kernels for {device.type} in this build; fused variants skipped", file=sys.stderr)
    if not args.no_compile:
        specs.append(("compile", False, None, True))
        if fused_kernels_available(device):
            specs.append(("fused+compile", True, default, True))
    if args.skip:
        unknown = set(args.skip) - {name for name, *_ in specs}
        if "eager" in args.skip:
            print("--skip: eager is every ratio's baseline and stays", file=sys.stderr)
            sys.exit(2)
        if unknown:
            print(f"--skip: no variant named {', '.join(sorted(unknown))} here "
                  f"(variants: {', '.join(name for name, *_ in specs)})", file=sys.stderr)
            sys.exit(2)
        specs = [spec for spec in specs if spec[0] not in args.skip]
    variants = []
    for name, fused, grouping, compiled in specs:
        net = copy.deepcopy(base)
        if fused:
            net.set_fused(True, grouping)
        w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        variants.append(Variant(name, torch.compile(net) if compiled else net, net, w_opt, a_opt, compiled=compiled))
    return variants


def run_device(args: argparse.Namespace, device: torch.device) -> list[Variant]:
    gen = torch.Generator().manual_seed(1)
    shape = (args.batch, 3, args.size, args.size)
    x, xv = (torch.randn(shape, generator=gen).to(device) for _ in range(2))
    y, yv = (torch.randint(0, 10, (args.batch,), generator=gen).to(device) for _ in range(2))
    variants = make_variants(args, device)
    for v in variants:  # warm-up: allocator, oneDNN/cuDNN algorithm choice, torch.compile
        before = dynamo_counters()
        v.first_step_s = timed(lambda: weight_step(v, x, y), device)
        timed(lambda: arch_step(v, xv, yv), device)
        for _ in range(args.warmup - 1):
            weight_step(v, x, y)
            arch_step(v, xv, yv)
        if v.compiled:
            graphs, breaks, hits, misses = (a - b for a, b in zip(dynamo_counters(), before))
            v.graphs, v.graph_breaks, v.cache = graphs, breaks, f"{hits} hit / {misses} miss"
        print(f"[{device.type}] {v.name}: warm (first step {v.first_step_s:.1f} s)", file=sys.stderr, flush=True)
    for r in range(args.rounds):
        # Each round starts at a different variant, so that no variant always follows the same one (the
        # previous variant's memory and cache footprint shifted a 1-2 % comparison in a fixed order).
        for v in variants[r % len(variants):] + variants[:r % len(variants)]:
            before = dynamo_counters()[0]
            for _ in range(args.steps):
                v.weight_times.append(timed(lambda: weight_step(v, x, y), device))
            for _ in range(args.steps):
                v.arch_times.append(timed(lambda: arch_step(v, xv, yv), device))
            v.late_compiles += dynamo_counters()[0] - before
        summary = ", ".join(f"{v.name} {statistics.median(v.weight_times) * 1e3:.0f} ms" for v in variants)
        print(f"[{device.type}] round {r + 1}/{args.rounds}: weight step median {summary}", file=sys.stderr, flush=True)
    for v in variants:
        with PeakMemory(device) as mem:
            weight_step(v, x, y)
        v.weight_peak = mem.peak
        with PeakMemory(device) as mem:
            arch_step(v, xv, yv)
        v.arch_peak = mem.peak
        v.saved_bytes = saved_activation_bytes(v, x, y)
    return variants


# ---------------------------------------------------------------------------------------------- report
def machine(devices: list[torch.device], threads: int) -> list[str]:
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if k in os.environ)
    lines = [f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores, torch threads: {threads}"
             + (f" ({env})" if env else ""),
             f"- torch {torch.__version__} (CUDA {torch.version.cuda or 'none'}), Python {platform.python_version()}, "
             f"{platform.system()} {platform.release()}"]
    for d in devices:
        if d.type == "cuda":
            p = torch.cuda.get_device_properties(d)
            lines.append(f"- GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, cuDNN {torch.backends.cudnn.version()}")
    try:
        from nb360 import _C

        lines.append(f"- nb360._C built with CUDA: {bool(_C.WITH_CUDA)} {_C.CUDA_VERSION} {_C.CUDA_ARCHS}".rstrip())
    except ImportError:
        pass
    return lines


def mib(n: float) -> str:
    return "n/a" if n != n else f"{n / 2**20:.0f}"  # nan check


def ratio(a: float, b: float) -> str:
    return "n/a" if a != a or b != b or b == 0 else f"{a / b:.2f}×"


def table(device: torch.device, variants: list[Variant]) -> list[str]:
    eager = variants[0]
    ew, ea = statistics.median(eager.weight_times), statistics.median(eager.arch_times)
    rows = ["| device | variant | weight step, median (best) | speed-up vs eager | arch step, median (best) "
            "| speed-up vs eager | weight-step peak MiB | vs eager | saved activations MiB | first step |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for v in variants:
        w, a = statistics.median(v.weight_times), statistics.median(v.arch_times)
        rows.append(
            f"| {device.type} | {v.name} | {w * 1e3:.0f} ms ({min(v.weight_times) * 1e3:.0f}) | {ratio(ew, w)} "
            f"| {a * 1e3:.0f} ms ({min(v.arch_times) * 1e3:.0f}) | {ratio(ea, a)} | {mib(v.weight_peak)} "
            f"| {ratio(v.weight_peak, eager.weight_peak)} | {mib(v.saved_bytes)} | {v.first_step_s:.1f} s |")
    by_name = {v.name: v for v in variants}

    def speedup(name: str, over: str) -> str:
        a, b = by_name.get(name), by_name.get(over)
        if a is None or b is None:
            return ""
        return (f"weight step {ratio(statistics.median(b.weight_times), statistics.median(a.weight_times))}, "
                f"arch step {ratio(statistics.median(b.arch_times), statistics.median(a.arch_times))}")

    rows.append("")
    for name, over, target in (("fused", "compile", "target ≥ 1.2×"), ("fused+compile", "fused", "target ≥ 1.0×"),
                               ("fused+compile", "compile", "")):
        if speedup(name, over):
            rows.append(f"- {name} vs {over} ({device.type}): {speedup(name, over)} faster"
                        + (f" ({target})" if target else ""))
    for v in variants:
        if v.compiled:
            rows.append(f"- {v.name}: {v.graphs} graph(s) compiled in warm-up, {v.graph_breaks} graph break(s), "
                        f"{v.late_compiles} compile(s) during the timed steps; inductor FX-graph cache {v.cache}; "
                        f"first step {v.first_step_s:.1f} s")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "all"), default="auto",
                        help="auto: the CPU, and CUDA when a GPU is visible")
    parser.add_argument("--C", type=int, default=16, help="supernet channels (default 16)")
    parser.add_argument("--N", type=int, default=5, help="cells per stage (default 5)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32, help="input height and width (default 32)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads (default: all cores)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over all variants")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant (first one compiles)")
    parser.add_argument("--clock", choices=("wall", "process"), default="wall",
                        help="wall time, or this process's CPU time (CPU only; meaningful with --threads 1, where it "
                             "does not count time other jobs hold the core)")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the torch.compile variants (a cold compile of the reference takes minutes)")
    parser.add_argument("--arch-step", choices=("inputs", "frozen"), default="inputs",
                        help="architecture step: backward(inputs=[alpha]) (default, as nb360's searches), or the "
                             "weights' requires_grad switched off for the step")
    parser.add_argument("--skip", nargs="+", default=[], metavar="VARIANT",
                        help="leave these variants out (e.g. compile: with --arch-step frozen its architecture step "
                             "is a second graph, a cold compile of the reference); eager, the ratios' baseline, stays")
    parser.add_argument("--quick", action="store_true", help="smoke run: C=8, N=1, batch 16, 1 round, no compile")
    args = parser.parse_args(argv)
    if args.quick:
        args.C, args.N, args.batch, args.rounds, args.steps, args.warmup, args.no_compile = 8, 1, 16, 1, 2, 1, True
    torch.set_num_threads(args.threads)
    global CLOCK, ARCH_STEP
    ARCH_STEP = args.arch_step
    load_start = os.getloadavg()[0]
    if args.clock == "process":
        if args.device in ("cuda", "all") or (args.device == "auto" and torch.cuda.is_available()):
            parser.error("--clock process measures CPU time: use it with --device cpu")
        CLOCK = time.process_time
    devices = [torch.device("cpu")]
    if args.device in ("cuda", "all") or (args.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA GPU is visible to this torch")
        devices = [torch.device("cuda")] if args.device == "cuda" else devices + [torch.device("cuda")]
    results = [(d, run_device(args, d)) for d in devices]

    print(f"## Supernet step (NB201 DARTS supernet C={args.C}, N={args.N}, batch {args.batch}, "
          f"3×{args.size}×{args.size})\n")
    clock = "wall-clock time" if args.clock == "wall" else "process CPU time"
    print(f"{datetime.date.today().isoformat()}, `{' '.join(['python', *sys.argv])}`; {clock}, median (best) over "
          f"{args.rounds} interleaved rounds × {args.steps} steps per variant; architecture step: {args.arch_step}; "
          f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.\n")
    print("\n".join(machine(devices, args.threads)))
    for d, variants in results:
        print()
        print("\n".join(table(d, variants)))


if __name__ == "__main__":
    main()
