"""A search run's log files (steps.jsonl, epochs.jsonl, lambda.csv), JSON writing and the progress bar."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any


class Logs:
    """steps.jsonl, lambda.csv and epochs.jsonl of a run; on resume, rows of unfinished epochs are dropped."""

    def __init__(self, run_dir: Path, truncate_to_epoch: int) -> None:
        self.paths = {name: run_dir / name for name in ("steps.jsonl", "epochs.jsonl", "lambda.csv")}
        for name in ("steps.jsonl", "epochs.jsonl"):
            _truncate_jsonl(self.paths[name], truncate_to_epoch)
        _truncate_csv(self.paths["lambda.csv"], truncate_to_epoch)
        self.files = {name: open(path, "a", encoding="utf-8", newline="") for name, path in self.paths.items()}
        self.lambda_writer: Any = None
        self.lambda_fields: list[str] | None = None

    def step(self, row: dict[str, Any]) -> None:
        self.files["steps.jsonl"].write(json.dumps(row) + "\n")
        fields = ["epoch", "step", *row["lambda"].keys()]
        if self.lambda_writer is None:
            self.lambda_writer = csv.writer(self.files["lambda.csv"])
            if self.files["lambda.csv"].tell() == 0:
                self.lambda_writer.writerow(fields)
            self.lambda_fields = fields
        self.lambda_writer.writerow([row["epoch"], row["step"], *row["lambda"].values()])

    def epoch(self, record: dict[str, Any]) -> None:
        self.files["epochs.jsonl"].write(json.dumps(record) + "\n")
        for f in self.files.values():
            f.flush()

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _truncate_jsonl(path: Path, epochs: int) -> None:
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("epoch", 0) < epochs]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _truncate_csv(path: Path, epochs: int) -> None:
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        return
    kept = [lines[0]] + [line for line in lines[1:] if line and int(line.split(",", 1)[0]) < epochs]
    path.write_text("".join(line + "\n" for line in kept) if len(kept) > 1 else "", encoding="utf-8")


def write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def nb360_version() -> str:
    from ... import __version__

    return __version__


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
