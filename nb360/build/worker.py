"""Trains one shard of architectures with a build's protocol and returns their records.

Runs in a worker process (local executor) or a Ray task; everything it needs arrives as plain
data (the spec as a dict), and everything it returns is JSON-ready. Each record holds measured
train/eval times per epoch, measured inference latency, params, FLOPs, and, for classification,
clean and adversarial (FGSM, PGD) accuracy after the last epoch.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from .spec import EVAL_SPLITS, BuildSpec


@functools.lru_cache(maxsize=2)
def _datasets(task: str, root: str, options_json: str) -> dict[str, Any]:
    import json

    from ..data import load

    return load(task, root, "search", **json.loads(options_json))


def _latency(model: Any, sample: Any, device: Any, batch: int, repeats: int) -> float:
    """Median seconds of one inference forward pass on `batch` copies of a sample."""
    import torch

    x = sample.unsqueeze(0).repeat(batch, *([1] * sample.dim())).to(device)
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 2):
            start = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= 2:  # two warm-up passes
                times.append(time.perf_counter() - start)
    return float(np.median(times))


def _robust(model: Any, dataset: Any, spec: BuildSpec, device: Any) -> dict[str, float]:
    """Clean, FGSM and PGD top-1 accuracy (%) on a split, for classification tasks.

    The attacks use one L-inf radius in normalised input units (spec.robust["pgd_eps"], which must equal
    "fgsm_eps"), PGD with a random start and spec.robust["pgd_steps"] steps (nb360.robust).
    """
    from ..errors import InputError
    from ..robust import ThreatModel, evaluate_robustness
    from ..training import make_loader

    if spec.robust["fgsm_eps"] != spec.robust["pgd_eps"]:
        raise InputError("the table builder attacks with one radius: give fgsm_eps equal to pgd_eps")
    loader = make_loader(dataset, spec.eval_batch_size or spec.batch_size, shuffle=False)
    out = evaluate_robustness(model, ((b[0], b[1]) for b in loader), ThreatModel(eps=spec.robust["pgd_eps"]),
                              pgd_steps=spec.robust["pgd_steps"], device=device)
    return {"accuracy_clean": out["clean_accuracy"], "accuracy_fgsm": out["fgsm_accuracy"],
            "accuracy_pgd": out["pgd_accuracy"]}


def train_arch(spec: BuildSpec, arch: int, seed: int, datasets: dict[str, Any]) -> dict[str, Any]:
    """Train one arch with one seed; return {"arch", "seed", "curves": {metric: [per epoch]}, "scalars": {...}}."""
    import torch

    from ..models import build, count_flops, count_parameters
    from ..tasks import get_task
    from ..training import fit, objective_for, seed_everything

    card = get_task(spec.task)
    device = torch.device(spec.device)
    seed_everything(seed)
    model = build(card, arch=arch, C=spec.channels, N=spec.cells)
    objective = objective_for(card, datasets["train"])
    curves: dict[str, list[float | None]] = {}

    def record(epoch: int, rec: dict[str, Any]) -> None:
        for split, values in rec.items():
            if split in ("epoch", "lr", "_state"):
                continue
            name = "train" if split == "train" else EVAL_SPLITS[split]
            for quantity, value in values.items():
                if quantity == "reported":
                    continue
                curves.setdefault(f"{name}-{quantity}", [None] * spec.epochs)[epoch] = float(value)

    eval_sets = {k: datasets[k] for k in EVAL_SPLITS if datasets.get(k) is not None}
    start = time.perf_counter()
    done: list[int] = []
    diverged_at = None
    try:
        fit(model, datasets["train"], eval_sets, objective, spec.train_config(seed), device,
            on_epoch=lambda epoch, rec: (record(epoch, rec), done.append(epoch)))
    except FloatingPointError:
        # A diverged loss is a result, recorded as NaN (docs/table-format.md: a recorded NaN keeps mask 1)
        # from the epoch it diverged in; merge fills every metric of the run from there. The build goes on.
        diverged_at = len(done)
        for values in curves.values():
            values[diverged_at:] = [float("nan")] * (spec.epochs - diverged_at)
        curves.setdefault("train-loss", [None] * spec.epochs)[diverged_at:] = [float("nan")] * (
            spec.epochs - diverged_at)
    sample = datasets["train"][0][0]
    scalars = {
        "params": count_parameters(model) / 1e6,
        "flops": count_flops(model, tuple(sample.shape)) / 1e6,
        "latency": _latency(model, sample, device, spec.latency_batch, spec.latency_repeats),
        "wall-time": time.perf_counter() - start,
    }
    if card.problem == "multiclass" and "test" in eval_sets and diverged_at is None:  # at the last epoch only
        for key, value in _robust(model, eval_sets["test"], spec, device).items():
            curves.setdefault(f"{EVAL_SPLITS['test']}-{key}", [None] * spec.epochs)[spec.epochs - 1] = value
    out = {"arch": arch, "seed": seed, "curves": curves, "scalars": scalars}
    if diverged_at is not None:
        out["diverged_at"] = diverged_at
    return out


def run_shard(spec_dict: dict[str, Any], archs: list[int], seed: int) -> list[dict[str, Any]]:
    """Train a shard of archs for one seed in this process (data loaded once per process), `spec.stack` at a time."""
    import json

    from ..cpu import prefer_passive_wait

    prefer_passive_wait()  # sleeping OpenMP waits where torch is not loaded yet (a Ray worker)
    import torch

    spec = BuildSpec.from_dict(spec_dict)
    torch.set_num_threads(spec.threads)
    datasets = _datasets(spec.task, spec.data_root, json.dumps(spec.loader_options, sort_keys=True))
    if spec.stack <= 1:
        return [train_arch(spec, arch, seed, datasets) for arch in archs]
    from .batched import train_stack

    records: list[dict[str, Any]] = []
    for start in range(0, len(archs), spec.stack):
        records += train_stack(spec, archs[start:start + spec.stack], seed, datasets)
    return records
