"""Adversarial evaluation after retraining: attack the test set of each seed's final network, resumably.

The attacks (`ATTACKS`; `nb360 evaluate --attacks fgsm,pgd,pgd-strong`):

- ``fgsm``:       the E2RNAS authors' FGSM (DARTS/test_adv.py): one signed step of ε, no random start;
- ``pgd``:        their PGD-10: 10 steps of 2.5ε/10, no random start;
- ``pgd-strong``: a standard strong L∞ attack beside them (Madry et al.): 20 steps of ε/4 from a uniform
                  random start, 5 restarts, keeping per sample the worst restart. The gap between it and
                  ``pgd`` shows how much the weak attack overstates robustness.

Each attack maximises the task's own training loss (cross-entropy, BCE, Darcy's relative L2 on decoded
outputs, Cosmic's masked BCE; PSICOV: the MSE of the full-map prediction against distances clipped at
16) and the robust figure is the task's own metric on the attacked test set, computed by the same
code as the clean one. ε comes from the card's [robustness] section (`threats.py`). Results are
written per seed and attack (seed-<s>/attacks/<attack>-<digest>.json, atomically), so an interrupted
evaluation resumes with the finished attacks and recomputes the rest with the same random draws.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..robust import fgsm, pgd
from ..tasks import TaskCard
from .files import RunDir, _digest, load_checkpoint, read_json, write_json
from .spec import STD_NOTE


@dataclass(frozen=True)
class AttackSettings:
    """One attack: `steps` signed steps of `step` × ε, optional random start, `restarts` (worst per sample)."""

    name: str
    steps: int
    step: float  # in units of ε
    random_start: bool
    restarts: int
    description: str

    def validate(self) -> AttackSettings:
        """Raise InputError on impossible settings; return self."""
        if self.steps < 1 or self.restarts < 1 or not self.step > 0:
            raise InputError(f"attack {self.name}: steps and restarts must be >= 1 and the step positive, got "
                             f"{self.steps}, {self.restarts}, {self.step}")
        if self.restarts > 1 and not self.random_start:
            raise InputError(f"attack {self.name}: restarts need a random start")
        return self


ATTACKS: dict[str, AttackSettings] = {
    "fgsm": AttackSettings("fgsm", 1, 1.0, False, 1,
                           "FGSM, one step of ε, no random start (the E2RNAS authors' test_adv.py)"),
    "pgd": AttackSettings("pgd", 10, 0.25, False, 1,
                          "PGD-10, steps of 2.5ε/10, no random start (the E2RNAS authors' test_adv.py)"),
    "pgd-strong": AttackSettings("pgd-strong", 20, 0.25, True, 5,
                                 "PGD-20, steps of ε/4 from a random start, 5 restarts, worst per sample (Madry et "
                                 "al.'s standard, stronger than the authors')"),
}
DEFAULT_ATTACKS = ("fgsm", "pgd", "pgd-strong")


def default_attacks(card: TaskCard) -> tuple[str, ...]:
    """The attacks run without --attacks: all three on the E2RNAS suite (its point), none elsewhere (opt in)."""
    return DEFAULT_ATTACKS if card.suite == "e2rnas" else ()


def parse_attacks(text: str | None) -> tuple[str, ...] | None:
    """--attacks: a comma-separated list of ATTACKS names, "default" (all three) or "none"; None when not given."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return ()
    if names == ["default"]:
        return DEFAULT_ATTACKS
    bad = [n for n in names if n not in ATTACKS]
    if bad or not names or len(set(names)) != len(names):
        raise InputError(f"--attacks takes distinct names from {', '.join(ATTACKS)} (or default, none), got {text!r}")
    return tuple(names)


def attack_settings(names: tuple[str, ...], overrides: dict[str, Any]) -> list[AttackSettings]:
    """The settings of `names` with `overrides` ({"pgd.steps": 20, "pgd-strong.restarts": 2, ...}) applied."""
    out = []
    for name in names:
        values = asdict(ATTACKS[name])
        for key, value in overrides.items():
            attack, _, field = key.partition(".")
            if attack == name:
                if field not in ("steps", "step", "restarts", "random_start"):
                    raise InputError(f"unknown attack setting {key!r}: use <attack>.steps/.step/.restarts")
                values[field] = value
        changed = values != asdict(ATTACKS[name])
        if changed:
            values["description"] = (f"{values['steps']} step(s) of {values['step']:g}ε, "
                                     f"{'random start' if values['random_start'] else 'no random start'}, "
                                     f"{values['restarts']} restart(s) (changed from the default: "
                                     f"{ATTACKS[name].description})")
        out.append(AttackSettings(**values).validate())
    unknown = {k.partition(".")[0] for k in overrides} - set(names)
    if unknown:
        raise InputError(f"settings given for attacks that are not run: {', '.join(sorted(unknown))}")
    return out


# ----------------------------------------------------------------------------- the task's side
class TaskAttack:
    """How one task's network is attacked: its forward on test items, the loss to raise, per-sample badness."""

    window = 128  # PSICOV's inference window

    def __init__(self, card: TaskCard, test_set: Any, device: torch.device) -> None:
        from ..search.supernet.losses import base_dataset
        from ..training.objectives import (Classification, CosmicMasks, DarcyRelativeL2, MultiLabel,
                                           PsicovDistances, objective_for)

        base = base_dataset(test_set)
        self.card, self.device = card, device
        self.objective = objective_for(card, base if hasattr(base, "y_normalizer") else None)  # bound to test
        kinds = ((PsicovDistances, "psicov"), (DarcyRelativeL2, "darcy"), (CosmicMasks, "cosmic"),
                 (MultiLabel, "multilabel"), (Classification, "multiclass"))
        self.kind = next(k for cls, k in kinds if isinstance(self.objective, cls))

    def forward(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The network on test inputs: FSD50K clips average their chunks' logits; PSICOV maps go by 128-windows."""
        if x.dim() == 5:  # (clips, chunks, C, H, W)
            return torch.stack([net(clip).mean(0) for clip in x])
        if self.kind == "psicov" and x.shape[-1] != self.window:
            return self._tiled(net, x)
        return net(x)

    def _tiled(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Non-overlapping window inference of full maps (the original's forward_window), differentiable."""
        b, c, s, _ = x.shape
        w = self.window
        if s % w:
            raise InputError(f"PSICOV map size {s} is not a multiple of the window {w}")
        n = s // w
        tiles = x.reshape(b, c, n, w, n, w).permute(0, 2, 4, 1, 3, 5).reshape(b * n * n, c, w, w)
        out = net(tiles).reshape(b, n, n, w, w).permute(0, 1, 3, 2, 4).reshape(b, 1, s, s)
        return out

    def region(self, batch: tuple[Any, ...]) -> torch.Tensor | None:
        """Where the inputs may be perturbed, per sample (PSICOV: the protein, not its padding); None: everywhere."""
        if self.kind != "psicov":
            return None
        return (batch[1] != 100.0).float()  # the padding's label is 100

    def loss(self, out: torch.Tensor, batch: tuple[Any, ...]) -> torch.Tensor:
        """The task's training loss of the outputs `out` of `batch` (what the attack raises)."""
        if self.kind == "psicov":
            return self.per_sample(out, batch).mean()
        return self.objective.loss(lambda _x: out, batch, self.device)[0]

    def per_sample(self, out: torch.Tensor, batch: tuple[Any, ...]) -> torch.Tensor:
        """(N,) badness of each sample's outputs, higher is worse (picks the worst restart)."""
        y = batch[1].to(out.device)
        if self.kind == "multiclass":
            ce = F.cross_entropy(out, y, reduction="none")
            return (out.argmax(1) != y).float() + ce / (1 + ce)  # a misclassification beats any loss
        if self.kind == "multilabel":
            return F.binary_cross_entropy_with_logits(out, y.float(), reduction="none").mean(1)
        if self.kind == "darcy":
            from ..training.objectives import DarcyRelativeL2

            data = self.objective.dataset
            pred = data.y_normalizer.decode(out.reshape(y.shape))
            target = data.y_normalizer.decode(y) if data.targets_normalized else y
            return DarcyRelativeL2._relative(pred, target)
        if self.kind == "cosmic":
            keep = 1.0 - batch[2].to(out.device)
            out = out.reshape(y.shape)
            return F.binary_cross_entropy_with_logits(out * keep, y * keep, reduction="none").flatten(1).mean(1)
        region = (y != 100.0).float()
        target = torch.clamp(torch.nan_to_num(y), max=16.0)
        err = (out.reshape(y.shape) - target) ** 2 * region
        return err.flatten(1).sum(1) / region.flatten(1).sum(1).clamp(min=1)


class _Prefix:
    """The first `limit` test items of a loader (whole loader when None), keeping its `.dataset`."""

    def __init__(self, loader: Any, limit: int | None) -> None:
        self.loader, self.dataset, self.limit = loader, loader.dataset, limit

    def __iter__(self) -> Any:
        seen = 0
        for batch in self.loader:
            if self.limit is not None and seen >= self.limit:
                return
            n = len(batch[1])
            if self.limit is not None and seen + n > self.limit:
                batch = tuple(t[: self.limit - seen] if isinstance(t, torch.Tensor) else t for t in batch)
            seen += len(batch[1])
            yield batch

    def __len__(self) -> int:
        return len(self.loader)


def _generator(seed: int, name: str) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) % (2 ** 63))


def attack_figures(net: torch.nn.Module, task: TaskAttack, loader: Any, threat: Any, settings: AttackSettings | None,
                   seed: int, device: torch.device, progress: bool = False) -> dict[str, float]:
    """The task metric of `net` (eval mode) on `loader`, clean (`settings` None) or under the attack."""
    from ..search.supernet.evaluate import AttackedLoader
    from ..training.objectives import objective_for

    evaluator = objective_for(task.card, task.objective.dataset if task.kind == "darcy" else None)
    net.eval()
    if settings is None:
        return evaluator.evaluate(lambda x: task.forward(net, x), loader, device)
    generator = _generator(seed, settings.name)
    bar = _bar(progress, len(loader), f"  {settings.name} (seed {seed})")

    def attack(batch: tuple[Any, ...]) -> torch.Tensor:
        x, y = batch[0], batch[1]
        mask = task.region(batch)
        threat_b = threat if mask is None else threat.restricted(mask)
        model: Callable[[torch.Tensor], torch.Tensor] = lambda inp: task.forward(net, inp)  # noqa: E731
        loss_fn = lambda out, _y: task.loss(out, batch)  # noqa: E731
        step = settings.step * threat.eps
        if settings.steps == 1 and settings.restarts == 1:
            adv = fgsm(model, x, y, threat_b, loss_fn=loss_fn, random_start=settings.random_start, step_size=step,
                       generator=generator)
        else:
            adv = pgd(model, x, y, threat_b, steps=settings.steps, step_size=step, random_start=settings.random_start,
                      loss_fn=loss_fn, generator=generator, restarts=settings.restarts,
                      score=lambda xa: task.per_sample(model(xa), batch))
        if bar is not None:
            bar.update(1)
        return adv

    try:
        return evaluator.evaluate(lambda x: task.forward(net, x), AttackedLoader(loader, attack, device), device)
    finally:
        if bar is not None:
            bar.close()


def _bar(enabled: bool, total: int, desc: str) -> Any:
    if not enabled:
        return None
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, file=sys.stderr, dynamic_ncols=True)


# ----------------------------------------------------------------------------- per seed, resumable
def run_seed_attacks(card: TaskCard, run: RunDir, config: dict[str, Any], model_desc: dict[str, Any],
                     datasets: dict[str, Any], seed: int, device: torch.device, threat: Any,
                     threat_desc: dict[str, Any], attacks: list[AttackSettings], limit: int | None,
                     progress: bool) -> dict[str, Any]:
    """{"seed", "clean", <attack>: figures} of one seed's final network; finished attacks are read back."""
    from ..training.loop import make_loader
    from .protocols import build_model

    wanted = [None, *attacks]
    paths = {}
    for settings in wanted:
        name = "clean" if settings is None else settings.name
        key = {"attack": None if settings is None else asdict(settings), "threat": threat_desc, "limit": limit,
               "checkpoint_config": _digest(config)}
        paths[name] = (run.seed_dir(seed) / "attacks" / f"{name}-{_digest(key)[:12]}.json", key)
    out: dict[str, Any] = {"seed": seed}
    todo = []
    for name, (path, _key) in paths.items():
        if path.exists():
            out[name] = read_json(path, "attack result")["figures"]
        else:
            todo.append(name)
    if not todo:
        return out
    if not run.checkpoint(seed).exists():
        raise InputError(f"seed {seed} has a result but no checkpoints/last.pt to attack; delete {run.seed_dir(seed)} "
                         "to retrain it")
    net = build_model(card, model_desc).to(device)
    net.load_state_dict(load_checkpoint(run.checkpoint(seed))["model"])
    batch_size = config["train"].get("eval_batch_size") or config["train"]["batch_size"]
    loader = _Prefix(make_loader(datasets["test"], batch_size, shuffle=False), limit)
    task = TaskAttack(card, datasets["test"], device)
    by_name = {s.name: s for s in attacks}
    for name in todo:
        figures = attack_figures(net, task, loader, threat, by_name.get(name), seed, device, progress)
        figures = {k: float(v) for k, v in figures.items() if k != "time"}
        path, key = paths[name]
        write_json(path, {**key, "figures": figures})
        out[name] = figures
    return out


# ----------------------------------------------------------------------------- results.json
def summarize_robustness(card: TaskCard, per_seed: list[dict[str, Any]], attacks: list[AttackSettings],
                         threat_desc: dict[str, Any], limit: int | None, data: dict[str, Any],
                         protocol: dict[str, Any]) -> dict[str, Any]:
    """The "robustness" entry of results.json: per seed, mean ± std, the threat model and the comparable row."""
    metric = card.metric.name
    names = ["clean", *(a.name for a in attacks)]
    summary: dict[str, Any] = {}
    for name in names:
        entry = {}
        for key in ("reported", metric, "accuracy"):
            values = [r[name].get(key) for r in per_seed if r.get(name) is not None]
            finite = [float(v) for v in values if v is not None and np.isfinite(v)]
            if finite:
                entry[key] = {"mean": float(np.mean(finite)), "std": float(np.std(finite)), "n": len(finite)}
        summary[name] = entry
    gap = None
    if "pgd" in summary and "pgd-strong" in summary:
        weak, strong = summary["pgd"]["reported"]["mean"], summary["pgd-strong"]["reported"]["mean"]
        gap = {"weak": "pgd", "strong": "pgd-strong", "reported_difference": strong - weak,
               "note": "how much worse the task metric is under the standard strong attack than under the authors' "
                       "PGD (positive: the weak attack overstates robustness)"}
    return {
        "threat": threat_desc, "robust_metric": card.robustness["robust_metric"],
        "attacks": {a.name: asdict(a) for a in attacks}, "limit": limit,
        "samples": "the whole test split" if limit is None else f"the first {limit} test items (not comparable)",
        "per_seed": per_seed, "summary": summary, "std": STD_NOTE, "overstatement": gap,
        "reference": _reference(card, attacks, threat_desc, limit, data, protocol),
    }


def _reference(card: TaskCard, attacks: list[AttackSettings], threat_desc: dict[str, Any], limit: int | None,
               data: dict[str, Any], protocol: dict[str, Any]) -> dict[str, Any] | None:
    """The card's published robust results and whether this run is comparable with them (and why not)."""
    ref = card.robustness.get("reference")
    if not ref:
        return None
    why = []
    if data.get("source", "released") != "released":
        why.append(f"the data is a {data['source']} stand-in, not the released files")
    if protocol.get("changed"):
        why.append("the training protocol was changed (--epochs)")
    if protocol.get("name") not in (None, "darts"):
        why.append(f"the evaluation protocol is {protocol.get('name')!r}, not the authors' DARTS/train.py protocol")
    if not threat_desc["card_default"]:
        why.append(f"eps is {threat_desc['eps_text']} in {threat_desc['unit']} units, not the card's")
    for a in attacks:
        if a.name in ("fgsm", "pgd") and asdict(a) != asdict(ATTACKS[a.name]):
            why.append(f"{a.name} settings differ from the authors'")
    if limit is not None:
        why.append(f"only the first {limit} test items were attacked")
    note = ("comparable: released data, the authors' retraining protocol, eps and attacks" if not why
            else "NOT comparable: " + "; ".join(why))
    return {**ref, "comparable": not why, "note_on_this_run": note}
