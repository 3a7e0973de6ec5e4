"""Training beside a CPU hog: torch's defaults (spinning OpenMP, threads = cores) vs nb360's thread policy.

Each variant trains the main job's retraining models (`nb360 run` step 4: the dense WRN baseline at batch 8
and an NB201 cell network, C=4, N=1, at batch 32, on Darcy-shaped 3x15x15 inputs; SYNTHETIC random data,
speed only) in a fresh process, once on the machine as it is ("quiet") and once beside a hog: as many
busy-looping processes as there are cores, at the same priority. Figures: median step time, the slowdown
hog/quiet, and the CPU the trainer got (process CPU seconds per wall second).

  torch-default     OMP_WAIT_POLICY unset (GNU OpenMP spins at barriers), torch's default thread count;
  passive (nb360)   OMP_WAIT_POLICY=PASSIVE (what the nb360 command line sets), torch's default thread count;
  passive-1-thread  PASSIVE and one thread: the alternative of sizing threads down to the idle cores.

  .venv/bin/python benchmarks/contention_bench.py [--steps 30] [--max-seconds 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine  # noqa: E402

VARIANTS = {"torch-default": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
            "passive-1-thread": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}}
MODELS = ("wrn", "nb201")


def worker(variant: str, model_name: str, steps: int, max_seconds: float) -> dict:
    """Train `steps` steps (or until max_seconds); report the median step time and the CPU obtained."""
    import torch

    from nb360.models import build

    torch.manual_seed(0)
    if model_name == "wrn":
        model, batch = build("darcyflow", backbone="wrn"), 8
    else:
        model, batch = build("darcyflow", arch=1216, C=4, N=1), 32
    x, y = torch.randn(batch, 3, 15, 15), torch.randn(batch, 1, 15, 15)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times, threads = [], []
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    for step in range(steps):
        threads.append(torch.get_num_threads())
        t = time.perf_counter()
        opt.zero_grad()
        loss = ((model(x).reshape(y.shape) - y) ** 2).mean()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start_wall > max_seconds:
            break
    wall = time.perf_counter() - start_wall
    timed = sorted(times[2:] if len(times) > 4 else times)
    return {"median_s": timed[len(timed) // 2], "steps": len(times),
            "cpu_per_wall": (time.process_time() - start_cpu) / wall, "threads": sorted(set(threads))}


def measure(variant: str, model: str, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(VARIANTS[variant])
    cmd = [sys.executable, __file__, "--worker", variant, model, str(args.steps), str(args.max_seconds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--max-seconds", type=float, default=40.0)
    parser.add_argument("--worker", nargs=4)
    args = parser.parse_args()
    if args.worker:
        variant, model, steps, seconds = args.worker
        print(json.dumps(worker(variant, model, int(steps), float(seconds))))
        return
    cores = os.cpu_count() or 1
    print(f"machine: {machine('torch')}; load average before: {os.getloadavg()}")
    results: dict[tuple[str, str, str], dict] = {}
    for condition in ("quiet", "hog"):
        hogs = []
        if condition == "hog":
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
            time.sleep(1.0)
        try:
            for model in MODELS:
                for variant in VARIANTS:
                    results[condition, model, variant] = r = measure(variant, model, args)
                    print(f"  {condition:5} {model:5} {variant:16} {1000 * r['median_s']:8.1f} ms/step  "
                          f"threads {r['threads']}  cpu/wall {r['cpu_per_wall']:.2f}  ({r['steps']} steps)", flush=True)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    print(f"load average after: {os.getloadavg()}\n")
    print("| model | variant | quiet ms/step (threads) | beside the hog ms/step (threads) | slowdown | "
          "CPU got beside the hog (cores) |")
    print("|---|---|---|---|---|---|")
    for model in MODELS:
        for variant in VARIANTS:
            q, h = results["quiet", model, variant], results["hog", model, variant]
            print(f"| {model} | {variant} | {1000 * q['median_s']:.1f} ({q['threads']}) | {1000 * h['median_s']:.1f} "
                  f"({h['threads']}) | {h['median_s'] / q['median_s']:.2f}× | {h['cpu_per_wall']:.2f} |")
        best = min(results["quiet", model, v]["median_s"] for v in VARIANTS)
        nb = results["hog", model, "passive"]["median_s"]
        print(f"| {model} | passive beside the hog vs the best quiet variant | | | {nb / best:.2f}× | |")


if __name__ == "__main__":
    main()
