"""The training loop shared by evaluation, the table builder and search: seeded, deterministic, timed.

`TrainConfig` is the protocol (SGD with momentum/nesterov/weight decay, cosine or step schedule
updated per iteration as NAS-Bench-201/360 do); `fit` runs it epoch by epoch and hands every
epoch's record to a callback, which is where callers log, checkpoint or stop. Inside a torchrun
process group (`nb360.training.distributed`) `fit` trains data-parallel: a DistributedSampler
splits each epoch, DDP averages the gradients, training figures are summed over the ranks and
only rank 0 evaluates; in a single process nothing of that runs.

Protocol extras (`TrainConfig.extras`, recorded with the protocol; all optional, absent = off), used
by the DARTS evaluation protocols (DARTS `train.py`, NAS-Bench-360 `darts/gaea/eval`):
- "lr_step_every": "epoch" steps the cosine schedule once per epoch (CosineAnnealingLR stepped per
  epoch) instead of per iteration; "lr_horizon_epochs": H anneals over H epochs instead of
  `epochs` (NAS-Bench-360 trains 150 epochs of a T_max = 600 schedule);
- "drop_path": {"prob": p, "horizon_epochs": H} sets `model.drop_path_prob = p · epoch / H` at the
  start of every epoch (DARTS's linear drop-path ramp);
- "auxiliary_weight": w adds w × the task loss of the auxiliary logits when the model returns
  `(logits, aux_logits)` in training (DARTS's auxiliary head, weight 0.4).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from . import distributed
from .objectives import Objective


@dataclass
class TrainConfig:
    """A training protocol."""

    epochs: int
    batch_size: int
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # "cosine" (to eta_min, per iteration), "step" (milestones x gamma), "constant"
    eta_min: float = 0.0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    eval_batch_size: int | None = None
    grad_clip: float | None = None
    seed: int = 0
    extras: dict[str, Any] = field(default_factory=dict)  # facts recorded with the protocol; see the module docstring

    def validate(self) -> None:
        """Raise InputError on impossible settings."""
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if not self.lr > 0:
            raise InputError(f"the learning rate must be > 0, got {self.lr}")
        if self.schedule not in ("cosine", "step", "constant"):
            raise InputError(f"unknown schedule {self.schedule!r}: use cosine, step or constant")
        if self.extras.get("lr_step_every", "iteration") not in ("iteration", "epoch"):
            raise InputError("extras['lr_step_every'] must be 'iteration' or 'epoch', got "
                             f"{self.extras['lr_step_every']!r}")
        horizon = self.extras.get("lr_horizon_epochs")
        if horizon is not None and not horizon >= 1:
            raise InputError(f"extras['lr_horizon_epochs'] must be >= 1, got {horizon!r}")
        drop = self.extras.get("drop_path")
        if drop is not None and not (0 <= drop.get("prob", -1) < 1 and drop.get("horizon_epochs", 0) >= 1):
            raise InputError(f"extras['drop_path'] needs 0 <= prob < 1 and horizon_epochs >= 1, got {drop!r}")

    def to_dict(self) -> dict[str, Any]:
        """The protocol as JSON-ready data."""
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) and ask torch for deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
        # Deterministic mode also fills every new tensor's memory with NaN (a check for kernels that read
        # memory they never wrote); it changes no result of a correct kernel and cost ~20 % of a table
        # build's time (measured: benchmarks/RESULTS.md, "Batched table builder"), so it is off.
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]


def make_loader(dataset: Any, batch_size: int, *, shuffle: bool, seed: int = 0, drop_last: bool = False,
                num_workers: int = 0, sampler: Any = None) -> torch.utils.data.DataLoader:
    """A DataLoader whose order depends only on `seed` (and the epoch, through the generator's state).

    With a `sampler` (e.g. a DistributedSampler, which shuffles itself) `shuffle` must be False.
    """
    from ..data.collate import collate_for

    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                                       num_workers=num_workers, generator=generator, sampler=sampler,
                                       worker_init_fn=_seed_worker if num_workers else None,
                                       collate_fn=collate_for(dataset))


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with the protocol's momentum, nesterov and weight decay."""
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning-rate schedule, stepped once per iteration."""
    horizon = cfg.extras.get("lr_horizon_epochs", cfg.epochs)
    per_epoch = cfg.extras.get("lr_step_every", "iteration") == "epoch"
    total = max(1, horizon * steps_per_epoch)
    ratio = cfg.eta_min / cfg.lr

    def factor(step: int) -> float:
        if cfg.schedule == "cosine" and per_epoch:  # CosineAnnealingLR(T_max=horizon) stepped after every epoch
            epoch = step // max(1, steps_per_epoch)
            return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * min(epoch, horizon) / horizon))
        if cfg.schedule == "cosine":
            return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
        if cfg.schedule == "step":
            epoch = step // max(1, steps_per_epoch)
            return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def auxiliary_loss(model: Callable[[torch.Tensor], Any], objective: Objective, batch: Any, device: torch.device,
                   weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """objective.loss of a model returning (logits, aux_logits), plus `weight` × the loss of the auxiliary logits.

    The batch statistics (accuracy counts) are those of the main logits, as DARTS's train.py reports them.
    """
    captured: list[torch.Tensor] = []

    def main(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        if isinstance(out, tuple):
            out, aux = out
            captured.append(aux)
        return out

    loss, stats = objective.loss(main, batch, device)
    if captured and weight:
        aux_out = captured[0]
        aux, _ = objective.loss(lambda _x: aux_out, batch, device)
        loss = loss + weight * aux
    return loss, stats


def train_one_epoch(model: torch.nn.Module, loader: Any, objective: Objective, optimizer: torch.optim.Optimizer,
                    scheduler: Any, device: torch.device, grad_clip: float | None = None,
                    on_batch: Callable[[], None] | None = None, reduce: bool = False,
                    auxiliary_weight: float = 0.0) -> dict[str, float]:
    """One pass over `loader`; returns {"loss", "accuracy" (when the objective counts it), "time"}.

    `on_batch()` runs after every optimizer step (progress bars); `reduce` sums the loss and the
    objective's counts over all ranks of a process group before averaging. With `auxiliary_weight`
    the model returns (logits, aux_logits) in training and the auxiliary loss is added (DARTS).
    """
    model.train()
    start = time.perf_counter()
    total, count, sums = 0.0, 0, {}
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        if auxiliary_weight:
            loss, batch_stats = auxiliary_loss(model, objective, batch, device, auxiliary_weight)
        else:
            loss, batch_stats = objective.loss(model, batch, device)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        scheduler.step()
        n = len(batch[0])
        # objectives whose loss sums over the batch (Darcy's LpLoss) report that sum; the rest a mean
        total += float(loss.detach()) * (1 if objective.loss_is_sum else n)
        count += n
        for key, value in batch_stats.items():
            sums[key] = sums.get(key, 0.0) + value
        if on_batch is not None:
            on_batch()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    if reduce:
        keys = sorted(sums)
        reduced = distributed.all_reduce_sum([total, float(count), *(sums[k] for k in keys)], device)
        total, count = reduced[0], int(reduced[1])
        sums = dict(zip(keys, reduced[2:]))
    return {"loss": total / max(1, count), **objective.train_summary(sums, count),
            "time": time.perf_counter() - start}


def timed_evaluate(model: torch.nn.Module, loader: Any, objective: Objective, device: torch.device) -> dict[str, float]:
    """objective.evaluate plus its wall time ("time", seconds)."""
    model.eval()
    start = time.perf_counter()
    result = objective.evaluate(model, loader, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    result["time"] = time.perf_counter() - start
    return result


EpochCallback = Callable[[int, dict[str, Any]], None]


def fit(model: torch.nn.Module, train_set: Any, eval_sets: dict[str, Any], objective: Objective, cfg: TrainConfig,
        device: torch.device, on_epoch: EpochCallback | None = None, start_epoch: int = 0,
        state: dict[str, Any] | None = None, on_batch: Callable[[], None] | None = None,
        eval_epochs: Callable[[int], bool] | None = None) -> dict[str, Any]:
    """Train `model` with `cfg`, evaluating every split of `eval_sets` after each epoch.

    `on_epoch(epoch, record)` receives {"train": {...}, "<split>": {...}, "lr": ...} and may save a
    checkpoint with `training_state(...)`; pass a saved `state` and `start_epoch` to resume exactly.
    (The caller loads `state["model"]` into `model`.) `on_batch()` runs after every step;
    `eval_epochs(epoch)` (default: every epoch) says after which epochs to evaluate.
    In a torchrun process group this trains data-parallel with the global batch `cfg.batch_size`
    split evenly over the ranks; `on_epoch` runs on every rank, with the evaluation on rank 0 only.
    Returns the last epoch's record.
    """
    cfg.validate()
    model.to(device)
    ddp = distributed.is_active()
    if not ddp:
        train_model: torch.nn.Module = model
        sampler = None
        loader = make_loader(train_set, cfg.batch_size, shuffle=True, seed=cfg.seed)
    else:
        train_model, sampler, loader = _data_parallel(model, train_set, cfg, device)
    eval_loaders = {name: make_loader(ds, cfg.eval_batch_size or cfg.batch_size, shuffle=False)
                    for name, ds in eval_sets.items() if ds is not None and distributed.is_main()}
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, len(loader))
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        loader.generator.set_state(state["loader_generator"])
        if ddp:
            ranks = state.get("ranks")
            if not ranks or len(ranks) != distributed.world_size():
                raise InputError(f"this checkpoint was written by {len(ranks) if ranks else 1} process(es); resume it "
                                 f"with the same number of processes, not {distributed.world_size()}")
            _set_rng_state(ranks[distributed.rank()], device)
        else:
            _set_rng_state(state, device)
    elif ddp:
        # Model init used the same seed on every rank; augmentation draws must differ between ranks.
        seed_everything(int(np.random.SeedSequence([cfg.seed, distributed.rank()]).generate_state(1)[0]))
    record: dict[str, Any] = {}
    drop = cfg.extras.get("drop_path")
    if drop is not None and not hasattr(model, "drop_path_prob"):
        raise InputError(f"the protocol uses drop-path but {type(model).__name__} has no drop_path_prob")
    for epoch in range(start_epoch, cfg.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        if drop is not None:  # DARTS: model.drop_path_prob = p · epoch / horizon, set before each epoch
            model.drop_path_prob = drop["prob"] * epoch / drop["horizon_epochs"]
        record = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                  "train": train_one_epoch(train_model, loader, objective, optimizer, scheduler, device, cfg.grad_clip,
                                           on_batch=on_batch, reduce=ddp,
                                           auxiliary_weight=float(cfg.extras.get("auxiliary_weight", 0.0)))}
        if eval_epochs is None or eval_epochs(epoch):
            for name, eval_loader in eval_loaders.items():
                record[name] = timed_evaluate(model, eval_loader, objective, device)
        if on_epoch is not None:
            if ddp:  # a collective: every rank's RNG state goes into rank 0's checkpoint
                ranks_rng = distributed.all_gather(_rng_state(device))
                on_epoch(epoch, {**record, "_state": lambda: {
                    **training_state(model, optimizer, scheduler, loader, device), "ranks": ranks_rng}})
            else:
                on_epoch(epoch, {**record,
                                 "_state": lambda: training_state(model, optimizer, scheduler, loader, device)})
    return record


def _data_parallel(model: torch.nn.Module, train_set: Any, cfg: TrainConfig,
                   device: torch.device) -> tuple[torch.nn.Module, Any, torch.utils.data.DataLoader]:
    """DDP wrapper, DistributedSampler (seeded by cfg.seed, reshuffled per epoch) and per-rank loader."""
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data.distributed import DistributedSampler

    world = distributed.world_size()
    if cfg.batch_size % world:
        raise InputError(f"the batch size {cfg.batch_size} does not split evenly over {world} processes; use a "
                         "process count that divides it")
    sampler = DistributedSampler(train_set, num_replicas=world, rank=distributed.rank(), shuffle=True,
                                 seed=cfg.seed, drop_last=False)
    loader = make_loader(train_set, cfg.batch_size // world, shuffle=False, seed=cfg.seed, sampler=sampler)
    wrapped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return wrapped, sampler, loader


def _rng_state(device: torch.device) -> dict[str, Any]:
    return {"torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "python_rng": random.getstate(), "numpy_rng": np.random.get_state()}


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    random.setstate(state["python_rng"])
    np.random.set_state(state["numpy_rng"])


def training_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, loader: Any,
                   device: torch.device) -> dict[str, Any]:
    """Everything needed to resume bit-identically after this epoch."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "loader_generator": loader.generator.get_state(), **_rng_state(device)}
