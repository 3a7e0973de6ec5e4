"""The core of the facade's API classes: opening, nats_bench's bookkeeping, arch indices and argument handling.

`APIBase` holds what every call needs (the table context, `evaluated_indexes`, `arch2infos_dict`,
`used_time`, the hp rule) and nats_bench's simple members; api.py adds the queries.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import numpy as np

from ... import _table
from ...errors import DataError, InputError
from ...table import Table
from . import location
from .context import TableContext
from .errors import NATSKeyError
from .results import ArchResults, _ArchSource

REQUIRED: Any = object()  # hp not given


def now() -> str:
    """nats_bench's time stamp for verbose lines."""
    return time.strftime("[%Y-%m-%d %X]", time.gmtime())


class _ArchInfos(MutableMapping):
    """`api.arch2infos_dict`: {index: {hp: ArchResults}} for the evaluated archs, built on first access.

    As in nats_bench, the objects are shared: what a caller changes in them (reset_latency, ...) the
    API's own answers for that arch then reflect.
    """

    def __init__(self, api: APIBase) -> None:
        self._api = api
        self.store: dict[int, dict[str, ArchResults]] = {}

    def __getitem__(self, index: int) -> dict[str, ArchResults]:
        hp2results = self.store.get(index)
        if hp2results is None:
            if index not in self._api.evaluated_indexes:
                raise KeyError(index)
            hp2results = self.store[index] = self._api._fresh_results(index)
        return hp2results

    def __setitem__(self, index: int, value: dict[str, ArchResults]) -> None:
        self.store[index] = value
        self._api.evaluated_indexes.add(index)

    def __delitem__(self, index: int) -> None:
        self.store.pop(index, None)
        self._api.evaluated_indexes.remove(index)

    def __contains__(self, index: object) -> bool:
        return index in self.store or index in self._api.evaluated_indexes

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._api.evaluated_indexes))

    def __len__(self) -> int:
        return len(self._api.evaluated_indexes)

    def __repr__(self) -> str:
        return f"arch2infos_dict({len(self)} archs, {len(self.store)} built)"


class APIBase:
    """What NATStopology and NATSsize share (nats_bench's NASBenchMetaAPI): state, facts and indices."""

    _space_name = ""  # "topology" or "size"
    _table_space = ""  # the table's space name: "nb201" or "sss"
    _full_epochs = 0
    _stock_base = ""

    def __init__(self, file_path_or_dict: Any = None, fast_mode: bool = False, verbose: bool = True, *,
                 nats_defaults: bool = False) -> None:
        if file_path_or_dict is None:
            path = location.default_table(self._space_name)
            print(f"{now()} Try to use the default NATS-Bench ({self._space_name}) path from fast_mode={fast_mode} "
                  f"and path={path}.")
            table = Table.open(path)
        elif isinstance(file_path_or_dict, Table):
            table = file_path_or_dict
        elif isinstance(file_path_or_dict, (str, os.PathLike)):
            path = os.fspath(file_path_or_dict)
            if verbose:
                print(f"{now()} Try to create the NATS-Bench ({self._space_name}) api from {path} with "
                      f"fast_mode={fast_mode}")
            if os.path.isdir(path) or path.endswith((".pbz2", ".pickle")):
                raise DataError(f"{path} is a released NATS-Bench file, not an nb360 table: convert it once with "
                                f"`nb360 table import {path}` and pass the .h5 it writes")
            table = Table.open(path)
        else:
            raise InputError(f"create() takes an nb360 table path (or None for the default table), not "
                             f"{type(file_path_or_dict).__name__}: nb360 does not load NATS-Bench's in-memory dicts; "
                             "write them out and convert them with `nb360 table import`")
        if table.space != self._table_space:
            raise InputError(f"{table.path} holds the {table.space} space; {type(self).__name__} needs a "
                             f"{self._table_space} table (NATS-Bench's {self._space_name} space)")
        self._ctx = TableContext(table)
        self.filename = os.path.basename(table.path)
        self._fast_mode = fast_mode
        self._archive_dir = table.path if fast_mode else None
        self._default_hp = "12" if nats_defaults else REQUIRED
        self._used_time = 0
        self._plans = self._ctx._plans
        self._configs: dict[tuple[int, str], dict[str, Any]] = {}
        self.evaluated_indexes: set[int] = set() if fast_mode else set(np.flatnonzero(self._ctx.recorded).tolist())
        self.arch2infos_dict = _ArchInfos(self)
        self._cache = self.arch2infos_dict.store
        self.verbose = verbose
        if verbose:
            print(f"{now()} Create NATS-Bench ({self._space_name}) done with {len(self.evaluated_indexes)}/"
                  f"{len(self)} architectures avaliable.")

    # ------------------------------------------------------------------ facts
    @property
    def table(self) -> Table:
        """The nb360 Table behind this API."""
        return self._ctx.table

    @property
    def meta_archs(self) -> list[str]:
        """Every arch string in index order."""
        return self._ctx.arch_strs

    @property
    def archstr2index(self) -> dict[str, int]:
        """Arch string -> index."""
        return self._ctx.str2index

    def __len__(self) -> int:
        return self._ctx.num_archs

    def __getitem__(self, index: Any) -> Any:
        return self._ctx.arch_strs[index]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self.evaluated_indexes)}/{len(self)} architectures, "
                f"fast_mode={self.fast_mode}, file={self.filename})")

    @property
    def avaliable_hps(self) -> list[str]:  # sic: nats_bench's spelling
        """The fidelities (hp) of the archs loaded so far (fast mode) or of the table."""
        evaluated = np.fromiter(self.evaluated_indexes, dtype=np.int64, count=len(self.evaluated_indexes))
        return [hp for hp in self._ctx.hps if evaluated.size and self._ctx.recorded_in_hp(hp)[evaluated].any()]

    @property
    def used_time(self) -> float:
        return self._used_time

    @property
    def search_space_name(self) -> str:
        return self._space_name

    @property
    def fast_mode(self) -> bool:
        return self._fast_mode

    @property
    def archive_dir(self) -> Any:
        """Where per-arch records are read from in fast mode (here: the table), None otherwise."""
        return self._archive_dir

    @property
    def full_train_epochs(self) -> int:
        return self._full_epochs

    @property
    def full_epochs_in_paper(self) -> int:
        return self._full_epochs

    @property
    def is_size(self) -> bool:
        return self._space_name == "size"

    @property
    def is_topology(self) -> bool:
        return self._space_name == "topology"

    def reset_archive_dir(self, archive_dir: Any) -> None:
        self._archive_dir = archive_dir

    def reset_fast_mode(self, fast_mode: bool) -> None:
        self._fast_mode = fast_mode

    def reset_time(self) -> None:
        self._used_time = 0

    @staticmethod
    def _say(message: str) -> None:
        """nats_bench's verbose line (callers check self._verbose first: building the message costs)."""
        print(f"{now()} {message}")

    # ------------------------------------------------------------------ indices
    @property
    def verbose(self) -> bool:
        """Print a line per call, as nats_bench does."""
        return self._verbose

    @verbose.setter
    def verbose(self, value: bool) -> None:
        self._verbose = value
        if value:  # the class's methods print; drop the silent compiled ones
            self.__dict__.pop("arch", None)
            self.__dict__.pop("query_index_by_arch", None)

    def _install_lookups(self) -> None:
        """Put compiled arch / query_index_by_arch on this instance (they answer in ~0.04 µs; see nats_plan.cpp)."""
        if not self._verbose:
            self.arch, self.query_index_by_arch = _table.nats_lookups(
                self._ctx.arch_strs, self._ctx.str2index, self._arch, self._query_index)

    def arch(self, index: int) -> str:
        """The arch string of an index."""
        self._install_lookups()
        return self._arch(index)

    def _arch(self, index: int) -> str:
        if self._verbose:
            self._say(f"Call the arch function with index={index}")
        if index < 0 or index >= len(self):
            raise InputError(f"invalid index : {index} vs. {len(self)}.")
        return self._ctx.arch_strs[index]

    def query_index_by_arch(self, arch: Any) -> int:
        """The index of an arch given as index, string or object with .tostr(); -1 when not in the space."""
        self._install_lookups()
        return self._query_index(arch)

    def _query_index(self, arch: Any) -> int:
        if self._verbose:
            self._say(f"Call query_index_by_arch with arch={arch}")
        if isinstance(arch, int):
            if 0 <= arch < self._ctx.num_archs:
                return arch
            raise InputError(f"Invalid architecture index {arch} vs [0, {len(self)}].")
        if isinstance(arch, str):
            return self._ctx.str2index.get(arch, -1)
        if hasattr(arch, "tostr"):
            return self._ctx.str2index.get(arch.tostr(), -1)
        return -1

    def random(self) -> int:
        """A random index (Python's `random`, as nats_bench)."""
        return random.randint(0, len(self) - 1)

    def _touch(self, index: Any) -> None:
        """nats_bench's _prepare_info: the arch must be recorded; fast mode marks it evaluated."""
        if index in self.evaluated_indexes:
            return
        if type(index) is not int and not isinstance(index, (int, np.integer)):
            raise InputError(f"invalid index of {index!r}: pass an int, or use query_index_by_arch first")
        if not 0 <= index < len(self):
            raise InputError(f"invalid index of {index}")
        if not self._ctx.recorded[index]:
            raise InputError(f"Did not find {index} in this table: it records {int(self._ctx.recorded.sum())} of "
                             f"{len(self)} archs")
        if self._fast_mode:
            self.evaluated_indexes.add(int(index))

    def _resolve(self, arch: Any) -> int:
        index = self.query_index_by_arch(arch)
        self._touch(index)
        return index

    def _hp(self, hp: Any) -> Any:
        if hp is REQUIRED:
            if self._default_hp is REQUIRED:
                raise InputError("pass hp= explicitly ('200'/'90' for full training, '12' for the low-fidelity "
                                 "runs): nb360's NATS facade has no silent default, unlike nats_bench's hp='12'; "
                                 "create(..., nats_defaults=True) restores nats_bench's default")
            return self._default_hp
        return hp

    def _plan(self, dataset: str, hp: Any) -> Any:
        plan = self._plans.get((dataset, hp))
        if plan is None:
            plan = self._ctx.plan(dataset, self._hp(hp))
        return plan

    def _fresh_results(self, index: int) -> dict[str, ArchResults]:
        return {hp: ArchResults(index, self._ctx.arch_strs[index], source=_ArchSource(self._ctx, index, hp))
                for hp in self._ctx.arch_hps(index)}

    def _results(self, index: int, hp: Any) -> ArchResults:
        """The ArchResults of (index, hp): the shared one when the caller has built it, else a fresh one."""
        hp = str(self._hp(hp))
        if index in self._cache:
            results = self._cache[index].get(hp)
            if results is None:
                raise NATSKeyError(f"arch {index} has no hp {hp!r}; it has {', '.join(self._cache[index])}")
            return results
        if hp not in self._ctx.arch_hps(index):
            raise NATSKeyError(f"arch {index} has no hp {hp!r}; it has {', '.join(self._ctx.arch_hps(index))}")
        return ArchResults(index, self._ctx.arch_strs[index], source=_ArchSource(self._ctx, index, hp))
