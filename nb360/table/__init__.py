"""The precomputed NAS-Bench-201 table: HDF5 format, memory-mapped C++ lookup, importer (no torch)."""

from .table import RunInfo, Table
from .writer import RunData, write_table

__all__ = ["RunData", "RunInfo", "Table", "write_table"]
