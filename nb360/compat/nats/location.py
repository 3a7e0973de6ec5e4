"""Where `create(None, ...)` finds its table, the way NATS-Bench looks in $TORCH_HOME.

NATS-Bench reads `$TORCH_HOME/NATS-tss-v1_0-3ffb9.pickle.pbz2` (or the `-simple` directory in fast
mode), `$TORCH_HOME` defaulting to `~/.torch`. nb360 reads an nb360 table of the same base name,
`NATS-tss-v1_0-3ffb9.h5` / `NATS-sss-v1_0-50262.h5`, from `$NB360_TABLES`, defaulting to
`~/.nb360/tables`; `nb360 table import SOURCE` writes there when given no `-o`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ...errors import DataError

TABLE_HOME_ENV = "NB360_TABLES"
DEFAULT_TABLE_HOME = "~/.nb360/tables"
# The released files' base names (nats_bench 1.8's ALL_BASE_NAMES[-1]) by NATS-Bench space name.
BASE_NAMES = {"topology": "NATS-tss-v1_0-3ffb9", "size": "NATS-sss-v1_0-50262"}
TABLE_SUFFIX = ".h5"


def table_home() -> Path:
    """The directory of default tables: $NB360_TABLES, or ~/.nb360/tables when it is unset."""
    return Path(os.environ.get(TABLE_HOME_ENV) or DEFAULT_TABLE_HOME).expanduser()


def _torch_home() -> Path:
    """NATS-Bench's own default directory ($TORCH_HOME, else ~/.torch), for hints."""
    return Path(os.environ.get("TORCH_HOME") or "~/.torch").expanduser()


def base_name(source: str | os.PathLike) -> str:
    """The base name of a released file or directory: NATS-tss-v1_0-3ffb9 for NATS-tss-v1_0-3ffb9-simple etc."""
    name = Path(source).name
    return re.sub(r"(-simple|-full)?(\.pickle)?(\.pbz2)?$", "", name) or name


def default_output(source: str | os.PathLike) -> Path:
    """Where `nb360 table import SOURCE` writes without -o: the table home, named after the source."""
    return table_home() / f"{base_name(source)}{TABLE_SUFFIX}"


def default_table(space_name: str) -> Path:
    """The table create(None, <space>) opens; a DataError naming both places and the fix when it is missing."""
    base = BASE_NAMES[space_name]
    path = table_home() / f"{base}{TABLE_SUFFIX}"
    if path.is_file():
        return path
    where = (f"${TABLE_HOME_ENV}={os.environ[TABLE_HOME_ENV]}" if os.environ.get(TABLE_HOME_ENV)
             else f"${TABLE_HOME_ENV} is unset, so the default {DEFAULT_TABLE_HOME}")
    sources = [p for p in (_torch_home() / f"{base}-simple", _torch_home() / f"{base}.pickle.pbz2") if p.exists()]
    source = str(sources[0]) if sources else f"{base}-simple (or {base}.pickle.pbz2)"
    raise DataError(f"create(None, ...) found no nb360 table for NATS-Bench's {space_name} space at {path} "
                    f"({where}); convert the released file once with `nb360 table import {source}` (it writes "
                    f"{path}), or set ${TABLE_HOME_ENV} to the directory holding {base}{TABLE_SUFFIX}")
