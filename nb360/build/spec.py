"""What a table build trains: the task, the protocol, the architectures and the seeds (`BuildSpec`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..space import nb201
from ..training import TrainConfig

EVAL_SPLITS = {"val": "x-valid", "test": "ori-test"}  # loader split -> table split name (NATS-Bench's names)


@dataclass
class BuildSpec:
    """A table build: every setting that decides its numbers (recorded in the table's protocol)."""

    task: str
    data_root: str
    epochs: int  # the fidelity, hp
    seeds: tuple[int, ...] = (777,)
    archs: str = "all"  # "all", "unique", "unique-sample:N[:SEED]", or a range "A-B" / "A:B" / a comma list of indices
    channels: int = 16  # C
    cells: int = 5  # N
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    eval_batch_size: int | None = None
    device: str = "cpu"
    threads: int = 1  # torch threads per worker process
    # archs trained together as one stacked computation (nb360.build.batched); 1 = one at a time (the reference)
    stack: int = 16
    latency_batch: int = 1  # batch size of the measured inference latency
    latency_repeats: int = 20
    robust: dict[str, Any] = field(default_factory=lambda: {"fgsm_eps": 8 / 255, "pgd_eps": 8 / 255, "pgd_steps": 10})
    loader_options: dict[str, Any] = field(default_factory=dict)

    def arch_list(self) -> list[int]:
        """The arch indices this build trains, ascending."""
        spec = self.archs.strip()
        if spec == "all":
            return list(range(nb201.NUM_ARCHS))
        if spec == "unique":
            return list(nb201.unique_indices())
        if spec.startswith("unique-sample:"):
            return _unique_sample(spec)
        try:
            if "," in spec:
                out = sorted({int(x) for x in spec.split(",") if x.strip()})
            else:
                sep = "-" if "-" in spec else ":"
                lo, _, hi = spec.partition(sep)
                out = list(range(int(lo), int(hi) + (1 if sep == "-" else 0))) if hi else [int(lo)]
        except ValueError:
            raise InputError(f"--archs {spec!r}: use all, unique, unique-sample:N[:SEED], a range A-B (inclusive) "
                             "or A:B, or a list i,j,k") from None
        bad = [a for a in out if not 0 <= a < nb201.NUM_ARCHS]
        if bad or not out:
            raise InputError(f"--archs {spec!r} selects no arch or arch {bad[:1]} outside 0..{nb201.NUM_ARCHS - 1}")
        return out

    def shard_order(self) -> list[int]:
        """The archs in shard-plan order: ascending, or, when stacking, by operations (edge 0 first).

        Stacked archs that take the same operation on an edge share one computation there, so sorting puts
        archs with common edges into the same shards and stacks; every arch's record is the same either way.
        """
        archs = self.arch_list()
        if self.stack > 1:
            archs.sort(key=lambda a: (nb201.op_ids(a), a))
        return archs

    def train_config(self, seed: int) -> TrainConfig:
        """The training protocol for one seed."""
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
                           nesterov=self.nesterov, weight_decay=self.weight_decay, schedule=self.schedule,
                           eval_batch_size=self.eval_batch_size, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    def validate(self) -> None:
        """Raise InputError on settings no build can run with."""
        if self.stack < 1:
            raise InputError(f"--stack must be >= 1 (1 trains one arch at a time), got {self.stack}")
        if self.threads < 1:
            raise InputError(f"--threads must be >= 1, got {self.threads}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildSpec:
        """Inverse of to_dict (a spec written before stacking existed trained one arch at a time)."""
        d = {"stack": 1, **d}
        d["seeds"] = tuple(d["seeds"])
        return cls(**d)

    def save(self, path: Path) -> None:
        """Write spec.json (the work directory's identity)."""
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))


def _unique_sample(spec: str) -> list[int]:
    """`unique-sample:N[:SEED]`: N distinct cells (isomorphism-class representatives) drawn uniformly with SEED."""
    import random

    parts = spec.split(":")[1:]
    try:
        n, seed = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except (ValueError, IndexError):
        raise InputError(f"--archs {spec!r}: write unique-sample:N or unique-sample:N:SEED") from None
    unique = nb201.unique_indices()
    if not 1 <= n <= len(unique) or len(parts) > 2:
        raise InputError(f"--archs {spec!r}: N must be between 1 and {len(unique)}")
    return sorted(random.Random(seed).sample(list(unique), n))
