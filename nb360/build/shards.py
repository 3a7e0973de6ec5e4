"""The work directory of a table build: its spec, the shard plan, and shard files written atomically."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, InputError
from .spec import BuildSpec


@dataclass(frozen=True)
class Shard:
    """A slice of the arch list, trained for one seed."""

    seed: int
    index: int
    archs: tuple[int, ...]

    @property
    def name(self) -> str:
        """File stem of the shard."""
        return f"seed{self.seed}/shard-{self.index:05d}"


class WorkDir:
    """`<work>/spec.json` plus `<work>/shards/seed<S>/shard-<k>.json`, one file per finished shard."""

    def __init__(self, path: str | os.PathLike, spec: BuildSpec, shard_size: int) -> None:
        if shard_size < 1:
            raise InputError(f"--shard-size must be >= 1, got {shard_size}")
        self.path = Path(path)
        self.spec = spec
        self.shard_size = shard_size
        self._claim()

    def _claim(self) -> None:
        """Create the directory, or check that an existing one belongs to this very build."""
        self.path.mkdir(parents=True, exist_ok=True)
        spec_file = self.path / "spec.json"
        identity = {"spec": self.spec.to_dict(), "shard_size": self.shard_size}
        if spec_file.exists():
            try:
                existing = json.loads(spec_file.read_text())
            except json.JSONDecodeError:
                raise DataError(f"{spec_file} is corrupt; delete the work directory to start the build afresh") from None
            existing.get("spec", {}).setdefault("stack", 1)  # written before stacking existed: one at a time
            if existing != identity and not self._has_finished_shards():
                # A build that was refused or failed before finishing any shard holds nothing to lose: the
                # corrected command takes the directory over instead of being blocked by it.
                _atomic_write(spec_file, json.dumps(identity, indent=2, sort_keys=True))
            elif existing != identity:
                changed = sorted(k for k in set(existing.get("spec", {})) | set(identity["spec"])
                                 if existing.get("spec", {}).get(k) != identity["spec"].get(k))
                if existing.get("shard_size") != self.shard_size:
                    changed.append("shard_size")
                raise InputError(f"work directory {self.path} holds a build with other settings ({', '.join(changed)}); "
                                 "resume it with the same settings, or pass another --work-dir")
        else:
            _atomic_write(spec_file, json.dumps(identity, indent=2, sort_keys=True))

    def _has_finished_shards(self) -> bool:
        shards = self.path / "shards"
        return shards.is_dir() and any(shards.rglob("shard-*.json"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> WorkDir:
        """An existing work directory, with the spec and shard size it was created with."""
        spec_file = Path(path) / "spec.json"
        try:
            identity = json.loads(spec_file.read_text())
            return cls(path, BuildSpec.from_dict(identity["spec"]), identity["shard_size"])
        except FileNotFoundError:
            raise InputError(f"{path} is not a table-build work directory (no spec.json)") from None
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DataError(f"{spec_file} is corrupt") from None

    def plan(self) -> list[Shard]:
        """Every shard of the build, seed by seed."""
        archs = self.spec.shard_order()
        return [Shard(seed, k // self.shard_size, tuple(archs[k:k + self.shard_size]))
                for seed in self.spec.seeds for k in range(0, len(archs), self.shard_size)]

    def shard_file(self, shard: Shard) -> Path:
        """Where a shard's records live."""
        return self.path / "shards" / f"{shard.name}.json"

    def done(self, shard: Shard) -> bool:
        """True when the shard's file exists and holds every arch of the shard."""
        path = self.shard_file(shard)
        if not path.exists():
            return False
        try:
            records = json.loads(path.read_text())["records"]
        except (json.JSONDecodeError, KeyError):
            path.unlink()  # a damaged shard is retrained rather than trusted
            return False
        return [r["arch"] for r in records] == list(shard.archs)

    def pending(self) -> list[Shard]:
        """Shards still to train (a resumed build skips the finished ones)."""
        return [s for s in self.plan() if not self.done(s)]

    def write(self, shard: Shard, records: list[dict[str, Any]]) -> None:
        """Store a finished shard atomically."""
        path = self.shard_file(shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, json.dumps({"seed": shard.seed, "index": shard.index, "records": records}))

    def records(self, seed: int) -> list[dict[str, Any]]:
        """All finished records of a seed, in arch order."""
        out: list[dict[str, Any]] = []
        for shard in self.plan():
            if shard.seed == seed and self.done(shard):
                out += json.loads(self.shard_file(shard).read_text())["records"]
        return sorted(out, key=lambda r: r["arch"])


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
