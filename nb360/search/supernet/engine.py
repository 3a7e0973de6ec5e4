"""The weight-sharing search loop: DARTS (first/second order), PC-DARTS, GAEA and E2RNAS on the NB201 supernet or
the DARTS-space supernet (`config.space`).

Per training batch (DARTS's order): one architecture step on a batch of the architecture split,
then one SGD step of the weights on the training batch. The architecture step is the method's
(`methods/`, one module per method: DARTS first or second order, PC-DARTS, GAEA's exponentiated
gradient, E2RNAS's MGDA over several objectives); the loop, the weights' optimiser, the data, the
checkpoints and the logs are shared here.

The space decides the network and its architecture weights: NB201, one (6, 5) α shared by all
cells; DARTS, α (2, 14, 8) for normal and reduction cells plus, with edge normalisation, β (2, 14)
(`nb360.models.darts_search`).

Reproducibility: the model is initialised from `seed`; each epoch's data order and attack noise
come from generators seeded by (seed, epoch), so a run resumed from the checkpoint written at the
end of an epoch continues exactly as an uninterrupted run (tests check equality of the weights).
"""

from __future__ import annotations

import itertools
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler, Subset

from ...data.collate import collate_for
from ...errors import DataError, InputError
from ...models import build_supernet, cost_model
from ...robust import fgsm
from ...space import nb201
from .config import RESUMABLE_CHANGES, SearchConfig
from .logs import Logs, nb360_version, progress_bar, write_json
from .losses import batch_loss, output_loss, split_objective, to_device
from .methods import ArchMethod, method_for
from .objectives import AUTHORS_SIZE_TARGET, ResourceObjective, supernet_size_proxy

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


@dataclass
class SearchResult:
    """What a finished (or stopped) weight-sharing search produced."""

    run_dir: Path
    config: SearchConfig
    epochs_done: int
    genotype: str
    arch_index: int | None  # NB201 index of the genotype; None in the DARTS space
    history: list[dict[str, Any]] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None
    finished: bool = False


def _mix(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes, unlike hash())."""
    value = 0x9E3779B97F4A7C15
    for p in parts:
        value = (value ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        value ^= value >> 31
    return value & 0x7FFFFFFFFFFFFFFF


def _generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(_mix(*parts))


class SupernetSearch:
    """One weight-sharing search run writing into a run directory (config, logs, checkpoints, plots)."""

    # DARTS's finite-difference radius (`_hessian_vector_product(r=1e-2)`). With ReLU networks the
    # difference quotient at this radius is the published approximation, not the exact Hessian-vector
    # product (activation patterns flip within it); tests shrink it to check the formula exactly.
    hessian_r = 1e-2

    def __init__(self, config: SearchConfig, run_dir: str | os.PathLike, *, datasets: dict[str, Any] | None = None,
                 card: Any = None, progress: bool = True) -> None:
        self.config = config.validate()
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.device = torch.device(config.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise InputError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu")
        if card is None:
            from ...tasks import get_task

            card = get_task(config.task)
        self.card = card
        self._setup_data(datasets)
        torch.manual_seed(config.seed)
        self.space = config.space
        if self.space == "darts":
            from ...models import build_darts_supernet

            self.net = build_darts_supernet(card, C=config.C, layers=config.layers,
                                            partial_channels=config.partial_channels,
                                            edge_weights=config.edge_weights, **config.supernet_options).to(self.device)
        else:
            self.net = build_supernet(card, C=config.C, N=config.N, **config.supernet_options).to(self.device)
        self.weights = [p for p in self.net.weight_parameters()]
        self.w_opt = torch.optim.SGD(self.weights, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                                     weight_decay=config.weight_decay)
        self.method: ArchMethod = method_for(self)
        self.threat = self._threat()
        self.resources = self._resources()
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ set-up
    def _setup_data(self, datasets: dict[str, Any] | None) -> None:
        cfg = self.config
        if datasets is None:
            if cfg.data_root is None:
                raise InputError(f"the search needs the data of task {cfg.task!r}: pass a data root (--data-root; "
                                 f"see `nb360 data download {cfg.task}`)")
            from ...data import load

            datasets = load(cfg.task, cfg.data_root, "search", **cfg.loader_options)
        self.datasets = datasets
        train, val = datasets.get("train"), datasets.get("val")
        if train is None or len(train) == 0:
            raise DataError(f"task {cfg.task!r} has no search training split")
        if cfg.arch_data == "train-half":
            if len(train) < 2:
                raise DataError("the training split needs at least 2 samples to halve")
            order = torch.randperm(len(train), generator=_generator(cfg.seed, 17)).tolist()
            half = len(train) // 2
            self.train_set, self.arch_set = Subset(train, order[:half]), Subset(train, order[half:])
        else:
            if val is None or len(val) == 0:
                raise DataError(f"task {cfg.task!r} has no validation split for the architecture steps; use "
                                "arch_data='train-half' (--arch-data train-half)")
            self.train_set, self.arch_set = train, val
        self.eval_set = val if val is not None and len(val) else self.arch_set
        # one objective per split: Darcy's targets are normalised on train and raw on val/test
        self.train_obj = split_objective(self.card, self.train_set)
        self.arch_obj = split_objective(self.card, self.arch_set)
        self.eval_obj = split_objective(self.card, self.eval_set)
        self.sample_shape = tuple(self.train_set[0][0].shape)

    def _threat(self) -> Any:
        """The threat model (nb360.threats.search_threat); None when nothing attacks, or only the found-arch
        evaluation would and the card refuses attacks (e.g. DeepSEA's one-hot DNA)."""
        from ...threats import search_threat

        cfg = self.config
        needs = "adv" in cfg.objectives or cfg.lower_level == "fgsm-rs"
        if not needs and not cfg.eval_attacks:
            return None
        if not needs and cfg.eps_space == "card" and not self.card.robustness.get("attackable", False):
            return None
        return search_threat(self.card, self.train_set, cfg.eps, cfg.eps_space)

    def _cost_model(self, kind: str) -> Any:
        """The expected-cost model of the space: the NB201 network's, or the DARTS evaluation network's."""
        spatial = self.sample_shape[1:] if kind == "flops" else None
        if self.space != "darts":
            return cost_model(self.net, kind, input_size=spatial)
        from ...models.darts_counting import darts_cost_model
        from .darts_settings import SETTINGS

        settings = SETTINGS.get(self.config.task)
        shape = {"C": settings.eval_C if settings else 36, "layers": 20, **self.config.size_net}
        return darts_cost_model(self.card.num_outputs, self.card.in_channels, self.card.topology, kind,
                                C=int(shape["C"]), layers=int(shape["layers"]), input_size=spatial)

    def _resources(self) -> dict[str, ResourceObjective]:
        cfg = self.config
        out: dict[str, ResourceObjective] = {}
        self.param_cost = self._cost_model("params")  # the evaluation network's exact count (what is reported)
        size_cost, target = self.param_cost, cfg.size_target
        if cfg.size_proxy == "supernet":  # E2RNAS's own proxy and, in the DARTS space, their --constrain_min 3
            size_cost = supernet_size_proxy(self.card, self.space, cfg)
            target = AUTHORS_SIZE_TARGET if target is None and self.space == "darts" else target
        out["size"] = ResourceObjective.build("size", size_cost, cfg.size_scale, target, cfg.size_constraint)
        if "flops" in cfg.objectives:
            out["flops"] = ResourceObjective.build("flops", self._cost_model("flops"), cfg.flops_scale,
                                                   cfg.flops_target, cfg.size_constraint)
        return out

    @property
    def simplex(self) -> Any:
        """GAEA's simplex weights (None for the other methods)."""
        return getattr(self.method, "simplex", None)

    @property
    def a_opt(self) -> torch.optim.Optimizer | None:
        """The optimiser of α (None for methods without one, e.g. GAEA)."""
        return getattr(self.method, "a_opt", None)

    def arch_weights(self) -> Any:
        """The current architecture weights the network mixes with: (6, 5) for NB201, MixWeights for DARTS."""
        return self.method.arch_weights()

    def genotype(self) -> str:
        """The method's genotype now: the arch string (NB201: argmax per edge, or the best of candidates scored on
        validation) or DARTS genotype text (DARTS rule)."""
        return self.method.derive()

    def arch_index(self, genotype: str) -> int | None:
        """The NB201 index of an arch string; None in the DARTS space (no table indexes it)."""
        return None if self.space == "darts" else nb201.index_of(genotype)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_path(self) -> Path:
        """Where this run's checkpoint lives."""
        return self.run_dir / CHECKPOINT

    def save_checkpoint(self) -> None:
        """Write the state after `self.epoch` finished epochs, atomically."""
        state = {
            "format": CHECKPOINT_FORMAT, "config": self.config.to_dict(), "epoch": self.epoch, "step": self.step,
            "model": self.net.state_dict(), "w_opt": self.w_opt.state_dict(),
            "a_opt": None, "simplex": None, **self.method.state_dict(),
            "history": self.history,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        }
        tmp = self.run_dir / f".{CHECKPOINT}.tmp-{os.getpid()}"
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path())

    def load_checkpoint(self, path: str | os.PathLike | None = None) -> None:
        """Restore the state of a checkpoint (its settings must match this run's, see RESUMABLE_CHANGES)."""
        path = Path(path) if path is not None else self.checkpoint_path()
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except FileNotFoundError:
            raise DataError(f"no checkpoint at {path}: nothing to resume (start the run without --resume)") from None
        except Exception as exc:  # a truncated or foreign file
            raise DataError(f"{path} is not a readable nb360 search checkpoint ({type(exc).__name__}: {exc}); "
                            "delete it and restart the run") from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise DataError(f"{path} is not an nb360 search checkpoint of format {CHECKPOINT_FORMAT}")
        saved, current = state["config"], self.config.to_dict()
        # settings added after the checkpoint was written count as their defaults
        defaults = SearchConfig(method=self.config.method, task=self.config.task).to_dict()
        saved = {**{k: defaults[k] for k in current if k not in saved and k in defaults}, **saved}
        differ = sorted(k for k in set(saved) | set(current)
                        if saved.get(k) != current.get(k) and k not in RESUMABLE_CHANGES)
        if differ:
            raise InputError(f"cannot resume {path}: settings differ from the checkpoint's in {', '.join(differ)} "
                             f"(checkpoint: {', '.join(f'{k}={saved.get(k)!r}' for k in differ)})")
        self.net.load_state_dict(state["model"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.method.load_state_dict(state)
        self.epoch, self.step, self.history = int(state["epoch"]), int(state["step"]), list(state["history"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])

    # ------------------------------------------------------------------ one step
    def _lr(self, epoch: int) -> float:
        """Cosine annealing from lr to lr_min over the epochs (CosineAnnealingLR's closed form)."""
        cfg = self.config
        return cfg.lr_min + (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * epoch / cfg.epochs)) / 2

    def arch_step(self, train_batch: tuple[Any, ...], arch_batch: tuple[Any, ...], lr: float,
                  generator: torch.Generator) -> dict[str, Any]:
        """One architecture update (the method's) on a batch of the architecture split; returns its log entries."""
        return self.method.arch_step(train_batch, arch_batch, lr, generator)

    def weight_step(self, batch: tuple[Any, ...], generator: torch.Generator) -> float:
        """One SGD step of the supernet weights on a training batch; returns its loss."""
        cfg = self.config
        mix = self.method.train_mix()

        def model(inp: torch.Tensor) -> torch.Tensor:
            return self.net(inp, mix)

        if cfg.lower_level == "fgsm-rs":
            assert self.threat is not None
            x_adv = fgsm(model, batch[0], batch[1], self.threat, loss_fn=output_loss(self.train_obj, batch, self.device),
                         random_start=True, step_size=cfg.adv_step * self.threat.eps, generator=generator)
            batch = (x_adv, *batch[1:])
        self.w_opt.zero_grad(set_to_none=True)
        loss = batch_loss(self.train_obj, model, batch, self.device)
        loss.backward()
        if cfg.grad_clip is not None:  # NATS's search-cell.py clips nothing
            torch.nn.utils.clip_grad_norm_(self.weights, cfg.grad_clip)
        self.w_opt.step()
        for a in self.net.arch_parameters():  # the weight loss also reaches α; the architecture step sets its own
            a.grad = None
        return float(loss.detach())

    # ------------------------------------------------------------------ epochs
    def _loaders(self, epoch: int) -> tuple[DataLoader, Iterator[Any]]:
        cfg = self.config
        train = DataLoader(self.train_set, batch_size=cfg.batch_size, collate_fn=collate_for(self.train_set),
                           sampler=RandomSampler(self.train_set, generator=_generator(cfg.seed, epoch, 1)))

        def arch_batches() -> Iterator[Any]:
            for cycle in itertools.count():  # the architecture split is cycled, reshuffled on every pass
                yield from DataLoader(self.arch_set, batch_size=cfg.batch_size, collate_fn=collate_for(self.arch_set),
                                      sampler=RandomSampler(self.arch_set, generator=_generator(cfg.seed, epoch, 2,
                                                                                                cycle)))

        return train, arch_batches()

    def evaluate_supernet(self) -> dict[str, Any]:
        """The task objective's scores of the supernet on the evaluation split, in eval mode (prefixed val_)."""
        was = self.net.training
        self.net.eval()
        mix = self.method.eval_mix()
        try:
            scores = self.eval_obj.evaluate(lambda inp: self.net(inp, mix),
                                            DataLoader(self.eval_set, batch_size=self.config.batch_size,
                                                       collate_fn=collate_for(self.eval_set)), self.device)
        except FloatingPointError as exc:
            raise InputError(f"{exc} (evaluating the supernet)") from None
        finally:
            self.net.train(was)
        return {f"val_{k}": float(v) for k, v in scores.items()}

    def run_epoch(self, logs: Logs) -> dict[str, Any]:
        """Train one epoch (architecture step, then weight step, per batch) and write its log rows."""
        cfg = self.config
        epoch = self.epoch
        lr = self._lr(epoch)
        for group in self.w_opt.param_groups:
            group["lr"] = lr
        self.net.train()
        train, arch_batches = self._loaders(epoch)
        attack_gen = _generator(cfg.seed, epoch, 3)
        lower_gen = _generator(cfg.seed, epoch, 4)
        self.method.start_epoch(epoch)
        steps = len(train) if cfg.max_steps is None else min(len(train), cfg.max_steps)
        bar = progress_bar(steps, f"{cfg.method} epoch {epoch + 1}/{cfg.epochs}", self.progress)
        start = time.perf_counter()
        train_losses = []
        for i, train_batch in enumerate(train):
            if i >= steps:
                break
            train_batch = to_device(train_batch, self.device)
            arch_batch = to_device(next(arch_batches), self.device)
            if self.method.weights_first:
                loss = self.weight_step(train_batch, lower_gen)
            if epoch >= cfg.warmup_epochs:
                info = self.arch_step(train_batch, arch_batch, lr, attack_gen)
            else:  # warm-up (PC-DARTS: the first 15 epochs train the weights only)
                info = {"arch_step": False, "objectives": {}, "grad_norm": {},
                        "lambda": {name: None for name in cfg.objectives}}
            if not self.method.weights_first:
                loss = self.weight_step(train_batch, lower_gen)
            train_losses.append(loss)
            self.step += 1
            row = {"epoch": epoch, "step": self.step, "lr": lr, "train_loss": loss, **info}
            logs.step(row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({"loss": f"{loss:.3f}", **{f"λ_{k}": f"{v:.2f}" for k, v in info["lambda"].items()
                                                           if v is not None}})
        if bar is not None:
            bar.close()
        extra = self.method.end_epoch(epoch)
        weights = self.arch_weights().detach()
        record: dict[str, Any] = {
            "epoch": epoch, "lr": lr, "steps": len(train_losses), "train_loss": float(np.mean(train_losses)),
            **self.evaluate_supernet(), "genotype": self.genotype(),
            "arch_weights": weights.cpu().tolist(),
            "expected_params_M": float(self.param_cost.expected(weights)) / 1e6,
            "seconds": time.perf_counter() - start, **extra,
        }
        if "flops" in self.resources:
            record["expected_flops_M"] = float(self.resources["flops"].cost.expected(weights)) / 1e6
        record["arch_index"] = self.arch_index(record["genotype"])
        self.epoch += 1
        self.history.append(record)
        logs.epoch(record)
        return record

    def run(self, *, resume: bool = False, stop_after: int | None = None) -> SearchResult:
        """Search until `config.epochs` (or `stop_after` more epochs), checkpointing after every epoch."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load_checkpoint()
        elif self.checkpoint_path().exists():
            raise InputError(f"{self.run_dir} already holds a search checkpoint: resume it (--resume) or choose a new "
                             "run directory (--out)")
        write_json(self.run_dir / "config.json", {**self.config.to_dict(), "nb360_version": nb360_version()})
        logs = Logs(self.run_dir, truncate_to_epoch=self.epoch)
        target = self.config.epochs if stop_after is None else min(self.config.epochs, self.epoch + stop_after)
        try:
            while self.epoch < target:
                self.run_epoch(logs)
                self.save_checkpoint()
        finally:
            logs.close()
        genotype = self.genotype()
        return SearchResult(self.run_dir, self.config, self.epoch, genotype, self.arch_index(genotype),
                            list(self.history), finished=self.epoch >= self.config.epochs)
