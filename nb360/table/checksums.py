"""The checksums of an nb360 table (header version 2; docs/table-format.md, "Checksums").

Chain of trust, each link checked before the next is used: the user-block header carries its own
lookup3 checksum and the XXH64 of the JSON index; the index carries, per run group, the HDF5
address and XXH64 of the run's `chunk_checksums` dataset; that dataset holds the XXH64 of every
2**CHUNK_SHIFT-byte chunk of the run's five datasets (in RUN_DATASETS order). The C++ reader checks
a chunk on its first touch, before any value from it is returned. Hashing is done by the same C++
code on both sides (nb360._table.xxh64 / chunk_checksums), so writer and reader cannot disagree.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

HEADER_MAGIC = b"NB360TBL"
HEADER_VERSION = 2
CHUNK_SHIFT = 16  # 64 KiB chunks: a first touch hashes ~6 µs of data; 1,536 checksums for a 96 MB table
ALGORITHM = "xxh64"
CHUNK_CHECKSUMS_DATASET = "chunk_checksums"


def index_entry() -> dict[str, Any]:
    """The file-level checksum facts recorded in the JSON index (informative; the header is what the reader uses)."""
    return {"algorithm": ALGORITHM, "chunk_bytes": 1 << CHUNK_SHIFT}


def header(schema_version: int, index_address: int, index_bytes: bytes) -> bytes:
    """The 60-byte nb360 header of version 2 (csrc/table/table_file.h)."""
    from .. import _table

    head = HEADER_MAGIC + struct.pack("<IIQ", HEADER_VERSION, schema_version, index_address)
    head += struct.pack("<I", _table.lookup3(head))  # bytes [0, 28): what a version-1 reader checks
    head += struct.pack("<IIIQQ", _table.CHECKSUM_XXH64, CHUNK_SHIFT, 0, len(index_bytes), _table.xxh64(index_bytes))
    return head + struct.pack("<I", _table.lookup3(head))


def chunk_checksums(arrays: Sequence[np.ndarray], shift: int = CHUNK_SHIFT) -> np.ndarray:
    """The XXH64 of every chunk of each array's stored (little-endian, C-order) bytes, concatenated."""
    from .. import _table

    parts = [_table.chunk_checksums(np.ascontiguousarray(a).view(np.uint8).reshape(-1), shift) for a in arrays]
    return np.concatenate(parts).astype("<u8") if parts else np.zeros(0, dtype="<u8")


def write_run_checksums(group: Any, arrays: Sequence[np.ndarray]) -> dict[str, Any]:
    """Store a run's chunk checksums as a dataset of its group; return the index entry pointing at it."""
    import h5py

    from .. import _table

    sums = chunk_checksums(arrays)
    ds = group.create_dataset(CHUNK_CHECKSUMS_DATASET, data=sums)
    return {"address": h5py.h5o.get_info(ds.id).addr, "xxh64": f"{_table.xxh64(sums.tobytes()):016x}"}
