"""Parse and validate one task card (TOML) into a `TaskCard`; every error names the card file and the field."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from ..errors import DataError
from .card import DataFile, Metric, Source, TaskCard
from .robustness import check_robustness

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

SCHEMA_VERSION = 1

TOPOLOGIES = ("point2d", "dense2d", "point1d")
PROBLEMS = ("multiclass", "multilabel", "regression", "binary-segmentation")
DIRECTIONS = ("min", "max")
SOURCE_STATUSES = ("live", "dead", "unknown")
LAYOUTS = {"point2d": ("CHW",), "dense2d": ("CHW",), "point1d": ("CL",)}
SUITES = ("nb360", "e2rnas")  # the ten NAS-Bench-360 tasks; E2RNAS's own datasets (outside NAS-Bench-360)

_TOP_KEYS = {
    "schema_version", "name", "title", "description", "topology", "in_channels", "input_size", "input_layout",
    "num_outputs", "output", "sample", "problem", "loss", "license", "license_note", "metric", "splits",
    "preprocessing", "files", "baseline", "reference_results", "quirks", "uncertain", "suite", "robustness",
}
_REQUIRED_TOP = ("schema_version", "name", "title", "topology", "in_channels", "input_size", "num_outputs",
                 "problem", "loss", "license", "metric", "splits", "files", "baseline", "reference_results")
_METRIC_KEYS = {"name", "direction", "reported_as", "secondary", "computation"}
_FILE_KEYS = {"name", "size", "approx_size", "sha256", "md5", "role", "extract", "sources"}
_SOURCE_KEYS = {"url", "status", "note"}
_ROW_KEYS = {"method", "variant", "value", "std", "best", "note"}
_SCHEDULE_KEYS = {"kind", "step_every", "gamma", "milestones", "other_epochs", "source"}
SCHEDULE_KINDS = ("step", "cosine", "constant")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class _Checker:
    """Field access with type checks; errors name the card file and the dotted field path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, problem: str) -> DataError:
        return DataError(f"task card {self.path}: field `{field}` {problem} (see tasks/README.md for the schema)")

    def table(self, data: Any, field: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(field, f"must be a table, got {type(data).__name__}")
        return data

    def unknown_keys(self, data: dict[str, Any], allowed: set[str], field: str) -> None:
        extra = sorted(set(data) - allowed)
        if extra:
            where = f"{field}.{extra[0]}" if field else extra[0]
            raise self.fail(where, f"is not part of the schema (allowed here: {', '.join(sorted(allowed))})")

    def get(self, data: dict[str, Any], key: str, field: str, kind: type | tuple[type, ...], *,
            required: bool = True, default: Any = None) -> Any:
        name = f"{field}.{key}" if field else key
        if key not in data:
            if required:
                raise self.fail(name, "is missing")
            return default
        value = data[key]
        # bool is an int subclass: never accept it where a number is meant.
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(name, f"must be {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(name, f"must be {_kind_name(kind)}, got {type(value).__name__} {value!r}")
        return value

    def text(self, data: dict[str, Any], key: str, field: str, *, required: bool = True) -> str:
        value = self.get(data, key, field, str, required=required, default="")
        if required and not value.strip():
            raise self.fail(f"{field}.{key}" if field else key, "must not be empty")
        return value

    def choice(self, data: dict[str, Any], key: str, field: str, options: tuple[str, ...]) -> str:
        value = self.text(data, key, field)
        if value not in options:
            raise self.fail(f"{field}.{key}" if field else key, f"is {value!r}; expected one of {', '.join(options)}")
        return value

    def positive_int(self, data: dict[str, Any], key: str, field: str) -> int:
        value = self.get(data, key, field, int)
        if value <= 0:
            raise self.fail(f"{field}.{key}" if field else key, f"must be a positive integer, got {value}")
        return value

    def strings(self, data: dict[str, Any], key: str, field: str) -> tuple[str, ...]:
        values = self.get(data, key, field, list, required=False, default=[])
        for i, value in enumerate(values):
            if not isinstance(value, str) or not value.strip():
                raise self.fail(f"{field + '.' if field else ''}{key}[{i}]", "must be a non-empty string")
        return tuple(values)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "an array",
             dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def read_card(path: Path) -> TaskCard:
    """Read and validate the task card at `path`."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read task card {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"task card {path} is not valid TOML: {exc}") from exc
    return parse_card(raw, path)


def parse_card(raw: dict[str, Any], path: Path) -> TaskCard:
    """Validate a card's parsed TOML `raw` (read from `path`) and build the `TaskCard`."""
    c = _Checker(path)
    c.unknown_keys(raw, _TOP_KEYS, "")
    for key in _REQUIRED_TOP:
        if key not in raw:
            raise c.fail(key, "is missing")
    version = c.get(raw, "schema_version", "", int)
    if version != SCHEMA_VERSION:
        raise c.fail("schema_version", f"is {version}; this nb360 reads schema version {SCHEMA_VERSION}")

    name = c.text(raw, "name", "")
    if not _NAME.match(name):
        raise c.fail("name", f"is {name!r}; use lower-case letters, digits and underscores")
    if path.suffix == ".toml" and path.stem != name:
        raise c.fail("name", f"is {name!r} but the file is {path.name}; the file must be named <name>.toml")

    topology = c.choice(raw, "topology", "", TOPOLOGIES)
    input_size = c.get(raw, "input_size", "", list)
    want_dims = 1 if topology == "point1d" else 2
    if len(input_size) != want_dims or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                               for v in input_size):
        raise c.fail("input_size", f"must be {want_dims} positive integers for a {topology} task, got {input_size!r}")
    layout = raw.get("input_layout", LAYOUTS[topology][0])
    if layout not in LAYOUTS[topology]:
        raise c.fail("input_layout", f"is {layout!r}; a {topology} task yields {' or '.join(LAYOUTS[topology])}")

    return TaskCard(
        name=name,
        title=c.text(raw, "title", ""),
        topology=topology,  # type: ignore[arg-type]
        in_channels=c.positive_int(raw, "in_channels", ""),
        input_size=tuple(input_size),
        num_outputs=c.positive_int(raw, "num_outputs", ""),
        problem=c.choice(raw, "problem", "", PROBLEMS),  # type: ignore[arg-type]
        loss=c.text(raw, "loss", ""),
        metric=_parse_metric(c, c.table(raw["metric"], "metric")),
        license=c.text(raw, "license", ""),
        files=_parse_files(c, raw["files"]),
        splits=_check_splits(c, c.table(raw["splits"], "splits")),
        baseline=_check_baseline(c, c.table(raw["baseline"], "baseline")),
        reference_results=_check_results(c, c.table(raw["reference_results"], "reference_results")),
        description=c.text(raw, "description", "", required=False),
        input_layout=layout,
        output=c.text(raw, "output", "", required=False),
        sample=c.text(raw, "sample", "", required=False),
        preprocessing=c.table(raw.get("preprocessing", {}), "preprocessing"),
        quirks=c.strings(raw, "quirks", ""),
        uncertain=c.strings(raw, "uncertain", ""),
        license_note=c.text(raw, "license_note", "", required=False),
        card_path=str(path),
        suite=c.choice(raw, "suite", "", SUITES) if "suite" in raw else "nb360",
        robustness=check_robustness(c, raw["robustness"], int(c.get(raw, "in_channels", "", int)))
        if "robustness" in raw else {},
    )


def _parse_metric(c: _Checker, data: dict[str, Any]) -> Metric:
    c.unknown_keys(data, _METRIC_KEYS, "metric")
    return Metric(
        name=c.text(data, "name", "metric"),
        direction=c.choice(data, "direction", "metric", DIRECTIONS),  # type: ignore[arg-type]
        reported_as=c.text(data, "reported_as", "metric"),
        secondary=c.strings(data, "secondary", "metric"),
        computation=c.text(data, "computation", "metric", required=False),
    )


def _parse_files(c: _Checker, data: Any) -> tuple[DataFile, ...]:
    if not isinstance(data, list) or not data:
        raise c.fail("files", "must be a non-empty array of [[files]] tables")
    files = []
    seen: set[str] = set()
    for i, entry in enumerate(data):
        where = f"files[{i}]"
        entry = c.table(entry, where)
        c.unknown_keys(entry, _FILE_KEYS, where)
        name = c.text(entry, "name", where)
        if name in seen:
            raise c.fail(f"{where}.name", f"repeats {name!r}")
        seen.add(name)
        if name.startswith("/") or ".." in Path(name).parts:
            raise c.fail(f"{where}.name", f"must be a relative path inside the task directory, got {name!r}")
        size = c.get(entry, "size", where, int, required=False)
        if size is not None and size <= 0:
            raise c.fail(f"{where}.size", f"must be a positive byte count, got {size}")
        sha256 = c.get(entry, "sha256", where, str, required=False)
        if sha256 is not None and not _HEX64.match(sha256):
            raise c.fail(f"{where}.sha256", "must be 64 lower-case hex digits")
        md5 = c.get(entry, "md5", where, str, required=False)
        if md5 is not None and not _HEX32.match(md5):
            raise c.fail(f"{where}.md5", "must be 32 lower-case hex digits")
        raw_sources = c.get(entry, "sources", where, list)
        if not raw_sources:
            raise c.fail(f"{where}.sources", "must list at least one source")
        sources = []
        for j, src in enumerate(raw_sources):
            swhere = f"{where}.sources[{j}]"
            src = c.table(src, swhere)
            c.unknown_keys(src, _SOURCE_KEYS, swhere)
            url = c.text(src, "url", swhere)
            if not url.startswith("https://"):
                raise c.fail(f"{swhere}.url", f"must be an https:// URL, got {url!r}")
            sources.append(Source(url=url, status=c.choice(src, "status", swhere, SOURCE_STATUSES),  # type: ignore[arg-type]
                                  note=c.text(src, "note", swhere, required=False)))
        files.append(DataFile(
            name=name, size=size, sha256=sha256, sources=tuple(sources),
            extract=c.get(entry, "extract", where, bool, required=False, default=False),
            role=c.text(entry, "role", where), approx_size=c.text(entry, "approx_size", where, required=False),
            md5=md5,
        ))
    return tuple(files)


def _check_splits(c: _Checker, data: dict[str, Any]) -> dict[str, Any]:
    c.text(data, "rule", "splits")
    for mode, parts in (("search", ("train", "val", "test")), ("retrain", ("train", "test"))):
        table = c.table(data.get(mode), f"splits.{mode}") if mode in data else None
        if table is None:
            raise c.fail(f"splits.{mode}", "is missing")
        for part in parts:
            c.text(table, part, f"splits.{mode}")
        sizes = c.table(c.get(table, "sizes", f"splits.{mode}", dict), f"splits.{mode}.sizes")
        for part in parts:
            value = sizes.get(part)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise c.fail(f"splits.{mode}.sizes.{part}", f"must be a positive integer, got {value!r}")
    retrain = data["retrain"]
    c.get(retrain, "merge_val", "splits.retrain", bool)
    return data


def _check_baseline(c: _Checker, data: dict[str, Any]) -> dict[str, Any]:
    for key in ("model", "source", "optimizer", "lr_schedule"):
        c.text(data, key, "baseline")
    for key in ("epochs", "batch_size"):
        c.positive_int(data, key, "baseline")
    lr = c.get(data, "learning_rate", "baseline", (int, float))
    if lr <= 0:
        raise c.fail("baseline.learning_rate", f"must be positive, got {lr}")
    _check_protocol(c, data)
    return data


def _non_negative(c: _Checker, data: dict[str, Any], key: str, field: str) -> None:
    value = c.get(data, key, field, (int, float), required=False)
    if value is not None and not value >= 0:  # also rejects NaN
        raise c.fail(f"{field}.{key}", f"must be a number >= 0, got {value}")


def _check_protocol(c: _Checker, data: dict[str, Any]) -> None:
    """The machine-readable training protocol (optional keys; `TaskCard.protocol()` needs them)."""
    _non_negative(c, data, "momentum", "baseline")
    _non_negative(c, data, "weight_decay", "baseline")
    c.get(data, "nesterov", "baseline", bool, required=False)
    if "eval_batch_size" in data:
        c.positive_int(data, "eval_batch_size", "baseline")
    c.strings(data, "protocol_uncertain", "baseline")
    if "schedule" not in data:
        return
    where = "baseline.schedule"
    schedule = c.table(data["schedule"], where)
    c.unknown_keys(schedule, _SCHEDULE_KEYS, where)
    kind = c.choice(schedule, "kind", where, SCHEDULE_KINDS)
    c.choice(schedule, "step_every", where, ("epoch", "iteration"))
    c.text(schedule, "source", where)
    if kind != "step":
        return
    gamma = c.get(schedule, "gamma", where, (int, float))
    if not 0 < gamma <= 1:
        raise c.fail(f"{where}.gamma", f"must be in (0, 1], got {gamma}")
    milestones = c.get(schedule, "milestones", where, list)
    if (not milestones or any(not isinstance(m, int) or isinstance(m, bool) for m in milestones)
            or milestones != sorted(milestones) or not 0 <= milestones[0] or milestones[-1] >= data["epochs"]):
        raise c.fail(f"{where}.milestones", f"must be ascending integer epochs in [0, {data['epochs']}), got "
                     f"{milestones!r}")
    if "other_epochs" in schedule:
        other = c.table(schedule["other_epochs"], f"{where}.other_epochs")
        c.unknown_keys(other, {"fractions", "strict"}, f"{where}.other_epochs")
        fractions = c.get(other, "fractions", f"{where}.other_epochs", list)
        strict = c.get(other, "strict", f"{where}.other_epochs", list)
        if (not fractions or any(isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f < 1
                                 for f in fractions) or fractions != sorted(fractions)):
            raise c.fail(f"{where}.other_epochs.fractions", f"must be ascending numbers in [0, 1), got {fractions!r}")
        if len(strict) != len(fractions) or any(not isinstance(s, bool) for s in strict):
            raise c.fail(f"{where}.other_epochs.strict", "must be one true/false per fraction (true: decay after "
                         "int(f * epochs), false: from it)")


def _check_results(c: _Checker, data: dict[str, Any]) -> dict[str, Any]:
    c.unknown_keys(data, {"source", "units", "note", "rows", "other"}, "reference_results")
    c.text(data, "source", "reference_results")
    c.text(data, "units", "reference_results")
    rows = c.get(data, "rows", "reference_results", list)
    if not rows:
        raise c.fail("reference_results.rows", "must list at least one published result")
    for i, row in enumerate(rows):
        where = f"reference_results.rows[{i}]"
        row = c.table(row, where)
        c.unknown_keys(row, _ROW_KEYS, where)
        c.text(row, "method", where)
        c.text(row, "variant", where)
        value = c.get(row, "value", where, (int, float), required=False)
        if value is None and not str(row.get("note", "")).strip():
            raise c.fail(f"{where}.value", "is missing; give a value or a note saying why there is none (e.g. n/a)")
        if value is not None and value != value:  # NaN
            raise c.fail(f"{where}.value", "is NaN")
        std = c.get(row, "std", where, (int, float), required=False)
        if std is not None and (std < 0 or value is None):
            raise c.fail(f"{where}.std", "must be a non-negative number next to a value")
        c.get(row, "best", where, bool, required=False)
    for j, extra in enumerate(c.get(data, "other", "reference_results", list, required=False, default=[])):
        where = f"reference_results.other[{j}]"
        extra = c.table(extra, where)
        c.text(extra, "source", where)
        c.text(extra, "text", where)
    return data
