"""NATS-Bench's API (nats_bench 1.8) over nb360 tables: topology ('tss') and size ('sss') spaces.

Scripts written for `nats_bench` run by changing the import and the `create` line:

    from nb360.compat.nats import create                 # instead of: from nats_bench import create
    api = create(None, "tss", fast_mode=True, verbose=False, nats_defaults=True)
    api.simulate_train_eval(arch, "cifar10", hp="12")    # same calls, same keys, same random draws

Every public member of nats_bench's `NATStopology` / `NATSsize`, and of the `ArchResults` /
`ResultsCount` objects they return, exists with nats_bench's semantics, answered from the
memory-mapped table in a few microseconds. The deliberate differences (README, "NATS-Bench
compatibility"):

- `hp` has no silent default (nats_bench's '12' is a known trap): pass it, or opt into nats_bench's
  default for unmodified scripts with `create(..., nats_defaults=True)`;
- `create` opens an nb360 table (`nb360 table import` converts the released files once); `None`
  means `$NB360_TABLES/NATS-tss-v1_0-3ffb9.h5` (or `...sss-v1_0-50262.h5`), `$NB360_TABLES`
  defaulting to `~/.nb360/tables` (see `location`);
- values are the table's float32 (7 significant digits), returned as Python floats;
- trained weights are not in tables: `get_net_param` raises, naming NATS-Bench's `-full` archives;
- every task of the table is accepted, including NAS-Bench-360's 'ninapro' and 'darcyflow' that
  stock nats_bench refuses in simulate_train_eval;
- errors are nb360 errors that are also the built-in types nats_bench raises (KeyError, ValueError).
"""

from __future__ import annotations

import os
from typing import Any

from ...errors import InputError
from .api import NATSsize, NATStopology
from .errors import NATSKeyError, WeightsUnavailableError
from .location import BASE_NAMES, DEFAULT_TABLE_HOME, TABLE_HOME_ENV, default_table, table_home
from .results import ArchResults, ResultsCount

__all__ = ["ArchResults", "BASE_NAMES", "DEFAULT_TABLE_HOME", "NATSKeyError", "NATSsize", "NATStopology",
           "ResultsCount", "TABLE_HOME_ENV", "WeightsUnavailableError", "create", "default_table",
           "search_space_info", "table_home"]

TSS_NAMES = ("tss", "topology")
SSS_NAMES = ("sss", "size")


def create(file_path_or_dict: str | os.PathLike | None, search_space: str, fast_mode: bool = False,
           verbose: bool = True, *, nats_defaults: bool = False) -> NATStopology | NATSsize:
    """Open an nb360 table behind nats_bench's API for `search_space` ('tss'/'topology' or 'sss'/'size').

    `file_path_or_dict`: an nb360 table, or None for the default table of the space (module doc).
    `fast_mode`, `verbose`: as nats_bench (fast mode marks archs evaluated as they are queried; the
    table is memory-mapped either way). `nats_defaults=True`: calls that omit `hp` use nats_bench's
    default '12' instead of raising.
    """
    if search_space in TSS_NAMES:
        return NATStopology(file_path_or_dict, fast_mode, verbose, nats_defaults=nats_defaults)
    if search_space in SSS_NAMES:
        return NATSsize(file_path_or_dict, fast_mode, verbose, nats_defaults=nats_defaults)
    raise InputError(f"invalid search space : {search_space} (use 'tss'/'topology' or 'sss'/'size')")


def search_space_info(main_tag: str, aux_tag: str | None) -> dict[str, Any]:
    """nats_bench.search_space_info: the op names of the topology space or the channel candidates of the size space."""
    from ...space import nb201, sss

    tss = {"op_names": list(nb201.OPS), "num_nodes": nb201.NUM_NODES}
    size = {"candidates": list(sss.CANDIDATES), "num_layers": sss.NUM_LAYERS}
    if main_tag == "nats-bench":
        if aux_tag in SSS_NAMES:
            return size
        if aux_tag in TSS_NAMES:
            return tss
        raise InputError(f"Unknown auxiliary tag: {aux_tag}")
    if main_tag == "nas-bench-201":
        if aux_tag is not None:
            raise InputError("For NAS-Bench-201, the auxiliary tag should be None.")
        return tss
    raise InputError(f"Unknown main tag: {main_tag}")
