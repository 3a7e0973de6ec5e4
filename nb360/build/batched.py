"""Trains a stack of K architectures as one computation (`nb360.models.stacked`) with a build's protocol.

Each arch is initialised exactly as `worker.train_arch` initialises it alone (seeded, then built), sees the
same data order (the loader is seeded by the build seed, as alone), and has its own optimiser state (SGD is
elementwise over the stacked parameters); the loss is the sum of the K archs' own losses, so each arch's
gradient is its own. Its record therefore equals the one-at-a-time record up to float rounding (grouped
convolutions and batched reductions sum in other orders; `tests/test_build_batched.py` states the tolerance).
One difference that never reaches a record: a parameter that gets no gradient alone (a branch feeding no
output, e.g. a convolution into a node whose outgoing edges are all `none`) is skipped by SGD alone but
weight-decayed in the stack, where its slice of a stacked tensor gets a zero gradient.

Times: the stack's measured time of each epoch (training, and each evaluation) is apportioned to the archs
in proportion to their FLOPs (the whole network's, so never zero); `wall-time` is the stack's training
wall time apportioned the same way plus the arch's own post-training work (counting, latency); latency
is measured for each arch alone, as the one-at-a-time builder measures it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .spec import EVAL_SPLITS, BuildSpec


def _stacked_loss(objective: Any, out: Any, batch: Any, device: Any) -> tuple[Any, list[dict[str, float]]]:
    """(per-arch losses, shape (K,), per-arch batch stats) of a stacked output (B, K, ...)."""
    import torch
    import torch.nn.functional as F

    from ..training.objectives import Classification, DarcyRelativeL2

    k = out.shape[1]
    if type(objective) is DarcyRelativeL2:  # vectorised over the archs, as DarcyRelativeL2.loss computes it
        x, y = (t.to(device) for t in batch[:2])
        norm = objective.dataset.y_normalizer
        pred = norm.decode(out.reshape(y.shape[0], k, *y.shape[1:]))
        if objective.dataset.targets_normalized:
            y = norm.decode(y)
        b = y.shape[0]
        rel = (torch.linalg.vector_norm((pred - y.unsqueeze(1)).reshape(b, k, -1), dim=2)
               / torch.linalg.vector_norm(y.reshape(b, -1), dim=1).unsqueeze(1))
        losses = rel.sum(0)
        sums = rel.detach().sum(0).tolist()
        return _finite(losses, objective), [{"rel_l2_sum": s} for s in sums]
    if type(objective) is Classification:
        x, y = (t.to(device) for t in batch[:2])
        b = y.shape[0]
        losses = F.cross_entropy(out.reshape(b * k, -1), y.repeat_interleave(k), reduction="none").view(b, k).mean(0)
        correct = (out.argmax(2) == y.unsqueeze(1)).sum(0).tolist()
        return _finite(losses, objective), [{"correct": float(c), "count": float(b)} for c in correct]
    # any other objective: its own loss per arch, on the arch's slice of the stacked output
    pairs = [objective.loss(lambda _x, i=i: out[:, i], batch, device) for i in range(k)]
    return torch.stack([p[0] for p in pairs]), [p[1] for p in pairs]


class StackDiverged(FloatingPointError):
    """The loss of some archs of a stack is not finite; `positions` are their places in the stack."""

    def __init__(self, message: str, positions: list[int]) -> None:
        super().__init__(message)
        self.positions = positions


def _finite(losses: Any, objective: Any) -> Any:
    import torch

    bad = (~torch.isfinite(losses.detach())).nonzero().flatten().tolist()
    if bad:
        raise StackDiverged(f"{objective.card.name}: the loss of stacked arch(s) {bad} is not finite (diverged); "
                            "lower the learning rate or check the data", bad)
    return losses


def _train_epoch(stack: Any, loader: Any, objective: Any, optimizer: Any, scheduler: Any,
                 device: Any) -> tuple[list[dict[str, float]], float]:
    """One epoch of the stack, as `train_one_epoch` runs it per arch; (per-arch figures, seconds)."""
    import torch

    stack.train()
    start = time.perf_counter()
    k = stack.K
    totals, count = np.zeros(k), 0
    sums: list[dict[str, float]] = [{} for _ in range(k)]
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        x = batch[0].to(device)
        losses, stats = _stacked_loss(objective, stack(x), batch, device)
        losses.sum().backward()
        optimizer.step()
        scheduler.step()
        n = len(batch[0])
        totals += losses.detach().cpu().double().numpy() * (1 if objective.loss_is_sum else n)
        count += n
        for acc, batch_stats in zip(sums, stats):
            for key, value in batch_stats.items():
                acc[key] = acc.get(key, 0.0) + value
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return [{"loss": totals[i] / max(1, count), **objective.train_summary(sums[i], count)} for i in range(k)], seconds


def _evaluate(stack: Any, loader: Any, objective: Any, device: Any) -> tuple[list[dict[str, float]], float]:
    """Every arch's `objective.evaluate` over a loader, from one stacked pass; (per-arch results, seconds).

    The stack runs once over the loader (arch 0's evaluation drives it); the other archs' evaluations replay
    its outputs in call order, so each arch's metrics come from the objective's own code.
    """
    import torch

    stack.eval()
    start = time.perf_counter()
    outputs: list[Any] = []

    def first(x: Any) -> Any:
        out = stack(x)
        outputs.append(out)
        return out[:, 0]

    with torch.no_grad():
        results = [objective.evaluate(first, loader, device)]
        for i in range(1, stack.K):
            calls: Iterator[Any] = iter(outputs)
            results.append(objective.evaluate(lambda _x, i=i: next(calls)[:, i], loader, device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return results, time.perf_counter() - start


def train_stack(spec: BuildSpec, archs: list[int], seed: int, datasets: dict[str, Any]) -> list[dict[str, Any]]:
    """Train `archs` together with one seed; return their records, shaped as `worker.train_arch` returns them."""
    import torch

    from ..models import build, count_flops, count_parameters
    from ..models.stacked import StackedNB201
    from ..tasks import get_task
    from ..training import objective_for, seed_everything
    from ..training.loop import make_loader, make_optimizer, make_scheduler
    from .worker import _latency, _robust

    card = get_task(spec.task)
    device = torch.device(spec.device)
    nets = []
    for arch in archs:
        seed_everything(seed)  # each arch's initialisation is the one it gets when trained alone
        nets.append(build(card, arch=arch, C=spec.channels, N=spec.cells))
    objective = objective_for(card, datasets["train"])
    cfg = spec.train_config(seed)
    cfg.validate()
    stack = StackedNB201(nets).to(device)
    loader = make_loader(datasets["train"], cfg.batch_size, shuffle=True, seed=cfg.seed)
    eval_loaders = {EVAL_SPLITS[k]: make_loader(datasets[k], cfg.eval_batch_size or cfg.batch_size, shuffle=False)
                    for k in EVAL_SPLITS if datasets.get(k) is not None}
    optimizer = make_optimizer(stack, cfg)
    scheduler = make_scheduler(optimizer, cfg, len(loader))
    sample = datasets["train"][0][0]
    flops = np.array([count_flops(net, tuple(sample.shape)) for net in nets], dtype=float)
    share = (flops / flops.sum()) if flops.sum() > 0 else np.full(len(nets), 1 / len(nets))
    curves: list[dict[str, list[float | None]]] = [{} for _ in archs]

    def put(i: int, name: str, epoch: int, values: dict[str, float], seconds: float) -> None:
        for quantity, value in {**values, "time": seconds * share[i]}.items():
            if quantity != "reported":
                curves[i].setdefault(f"{name}-{quantity}", [None] * spec.epochs)[epoch] = float(value)

    start = time.perf_counter()
    diverged: dict[int, int] = {}  # stack position -> the epoch its loss diverged in
    try:
        for epoch in range(cfg.epochs):
            figures, seconds = _train_epoch(stack, loader, objective, optimizer, scheduler, device)
            for i, values in enumerate(figures):
                put(i, "train", epoch, values, seconds)
            for name, eval_loader in eval_loaders.items():
                results, seconds = _evaluate(stack, eval_loader, objective, device)
                for i, values in enumerate(results):
                    put(i, name, epoch, {k: v for k, v in values.items() if k != "time"}, seconds)
    except StackDiverged as exc:
        # A diverged loss is a result, recorded as NaN from the epoch it diverged in (as `worker.train_arch`
        # records it alone). The other archs are trained again as a stack of their own: a record does not
        # depend on the stack it was trained in, and a stack whose member holds NaN weights is not trusted.
        diverged = {i: epoch for i in exc.positions}
    stack_seconds = time.perf_counter() - start
    stack.unstack()
    retrained: dict[int, dict[str, Any]] = {}
    if diverged:
        rest = [i for i in range(len(archs)) if i not in diverged]
        if rest:
            retrained = dict(zip(rest, train_stack(spec, [archs[i] for i in rest], seed, datasets)))
    records = []
    for i, (arch, net) in enumerate(zip(archs, nets)):
        if i in retrained:
            records.append(retrained[i])
            continue
        if i in diverged:
            at = diverged[i]
            for values in curves[i].values():
                values[at:] = [float("nan")] * (spec.epochs - at)
            curves[i].setdefault("train-loss", [None] * spec.epochs)[at:] = [float("nan")] * (spec.epochs - at)
        own = time.perf_counter()
        net.to(device)
        scalars = {"params": count_parameters(net) / 1e6, "flops": flops[i] / 1e6,
                   "latency": _latency(net, sample, device, spec.latency_batch, spec.latency_repeats)}
        if card.problem == "multiclass" and "test" in datasets and datasets["test"] is not None and i not in diverged:
            for key, value in _robust(net, datasets["test"], spec, device).items():
                curves[i].setdefault(f"{EVAL_SPLITS['test']}-{key}", [None] * spec.epochs)[spec.epochs - 1] = value
        scalars["wall-time"] = stack_seconds * share[i] + time.perf_counter() - own
        record = {"arch": arch, "seed": seed, "curves": curves[i], "scalars": scalars}
        if i in diverged:
            record["diverged_at"] = diverged[i]
        records.append(record)
    return records
