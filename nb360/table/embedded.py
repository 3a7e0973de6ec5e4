"""The precomputed table shipped with nb360 (built by `nb360 table build` itself; see nb360/resources/README.md)."""

from __future__ import annotations

from pathlib import Path

EMBEDDED_FILE = "darcyflow-nb201-unique-hp4.h5"
# The generated Darcy Flow set the embedded table was trained on (`nb360 data generate darcyflow` settings);
# the main job generates the same files, so searches on the table and retraining use the same data.
EMBEDDED_DATA = {"n_train": 300, "n_test": 100, "resolution": 15, "seed": 0}


def embedded_table_path() -> Path:
    """Path of the embedded Darcy Flow NB201 table inside the installed package."""
    return Path(__file__).resolve().parent.parent / "resources" / EMBEDDED_FILE
