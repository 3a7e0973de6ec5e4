"""The files of an evaluation run directory: JSON, checkpoints, logs, the manifest and its sessions."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..cpu import wait_policy
from ..errors import DataError, InputError
from .spec import MANIFEST_FORMAT, EvalSpec


# ----------------------------------------------------------------------------- files
def _json_ready(value: Any) -> Any:
    """Plain JSON: numpy scalars to Python, non-finite floats to null, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically (a temporary file renamed over the target), keys sorted: same data, same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(_json_ready(payload), indent=2, sort_keys=True, allow_nan=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file of a run directory; DataError naming the file when it is unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"the {what} {path} is not valid JSON ({exc}); the run directory is damaged: evaluate "
                        "into a new --out directory") from exc


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(_json_ready(payload), sort_keys=True).encode()).hexdigest()


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    return [] if old == new else [f"{prefix}: {_short(old)} there, {_short(new)} now"]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _checkpoint_safe(value: Any) -> Any:
    """Numpy arrays to tensors (and back in `_from_checkpoint`) so checkpoints load with weights_only=True."""
    import torch

    if isinstance(value, dict):
        return {k: _checkpoint_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_checkpoint_safe(v) for v in value)
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(value.astype(np.int64) if value.dtype == np.uint32 else value),
                "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_checkpoint(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return value["__ndarray__"].numpy().astype(value["dtype"])
        return {k: _from_checkpoint(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_from_checkpoint(v) for v in value)
    return value


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a half-written checkpoint."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(_checkpoint_safe(state), tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by `save_checkpoint` (tensors and plain data only: loaded with weights_only)."""
    import torch

    try:
        return _from_checkpoint(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # torch raises many kinds for truncated or foreign files
        raise DataError(f"cannot read the checkpoint {path} ({type(exc).__name__}: {exc}); delete it to restart that "
                        "seed from epoch 0, or evaluate into a new --out directory") from exc


def _strip_times(record: dict[str, Any]) -> dict[str, Any]:
    """A fit record without wall times (they differ between identical runs) or private entries."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key.startswith("_"):
            continue
        out[key] = {k: v for k, v in value.items() if k != "time"} if isinstance(value, dict) else value
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def default_run_dir(spec: EvalSpec, root: str | os.PathLike[str] = "runs") -> Path:
    """runs/evaluate-<task>-<model>-<UTC time>."""
    what = f"arch{spec.arch}" if spec.arch is not None and str(spec.arch).isdigit() else (
        "arch" if spec.arch is not None else "genotype" if spec.genotype is not None else str(spec.backbone))
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"evaluate-{spec.task}-{what}-{stamp}"


# ----------------------------------------------------------------------------- run directory
@dataclass
class RunDir:
    """The files of one evaluation run."""

    path: Path

    @property
    def config(self) -> Path:
        """config.json."""
        return self.path / "config.json"

    @property
    def manifest(self) -> Path:
        """manifest.json."""
        return self.path / "manifest.json"

    @property
    def results(self) -> Path:
        """results.json."""
        return self.path / "results.json"

    def seed_dir(self, seed: int) -> Path:
        """seed-<s>/."""
        return self.path / f"seed-{seed}"

    def log(self, seed: int) -> Path:
        """seed-<s>/log.jsonl."""
        return self.seed_dir(seed) / "log.jsonl"

    def checkpoint(self, seed: int) -> Path:
        """seed-<s>/checkpoints/last.pt."""
        return self.seed_dir(seed) / "checkpoints" / "last.pt"

    def seed_result(self, seed: int) -> Path:
        """seed-<s>/result.json."""
        return self.seed_dir(seed) / "result.json"


def read_log(path: Path) -> list[dict[str, Any]]:
    """The epoch records of a log.jsonl (a torn last line, from a crash mid-write, is skipped)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _truncate_log(path: Path, keep_below: int) -> None:
    """Drop log lines of epochs >= keep_below (written after the checkpoint a resume starts from)."""
    records = [r for r in read_log(path) if r.get("epoch", -1) < keep_below]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(json.dumps(_json_ready(r), sort_keys=True) + "\n" for r in records), encoding="utf-8")
    os.replace(tmp, path)


def _prepare(run: RunDir, config: dict[str, Any]) -> bool:
    """Create the run directory or check it belongs to `config`; True when resuming."""
    if run.config.exists():
        old = read_json(run.config, "run configuration")
        if old != _json_ready(config):
            diffs = _differences(old, _json_ready(config))
            listed = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
            raise InputError(f"run directory {run.path} holds a run with a different configuration ({listed}); "
                             "rerun with the same options to resume it, or choose a new --out directory")
        return True
    if run.path.exists() and any(run.path.iterdir()):
        raise InputError(f"{run.path} exists and is not an nb360 evaluate run directory (no config.json); choose a "
                         "new --out directory")
    write_json(run.config, config)
    return False


# ----------------------------------------------------------------------------- manifest
def _environment(device: Any) -> dict[str, Any]:
    import torch

    from ..build.merge import environment

    env = environment(str(device))
    env["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    env["device"] = env["gpu"] if device.type == "cuda" else env["cpu"]
    env["torch_threads"] = torch.get_num_threads()
    env["omp_wait_policy"] = wait_policy()
    env["host"] = socket.gethostname()
    env["numpy"] = np.__version__
    return env


def _start_session(run: RunDir, spec: EvalSpec, config: dict[str, Any], device: Any, processes: int,
                   command: list[str], data_files: dict[str, Any], data_dir: str) -> dict[str, Any]:
    env = _environment(device)
    if run.manifest.exists():
        manifest = read_json(run.manifest, "manifest")
    else:
        manifest = {"format": MANIFEST_FORMAT, "nb360": __version__, "git_revision": env["git_revision"],
                    "git_dirty": env["git_dirty"], "environment": env, "command": command,
                    "seeds": list(spec.seeds), "task": spec.task, "config_sha256": _digest(config),
                    "data": {"root": str(spec.data_root), "task_dir": data_dir, "files": data_files},
                    "sessions": []}
    manifest["sessions"].append({"started": _now(), "finished": None, "status": "running", "command": command,
                                 "cwd": os.getcwd(), "processes": processes, "environment": env, "resumed_from": {}})
    write_json(run.manifest, manifest)
    return manifest


def _end_session(run: RunDir, manifest: dict[str, Any], status: str) -> None:
    manifest["sessions"][-1].update(finished=_now(), status=status)
    write_json(run.manifest, manifest)


