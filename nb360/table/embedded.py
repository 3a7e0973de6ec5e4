"""The precomputed table shipped with nb360 (built by `nb360 table build` itself; see nb360/resources/README.md)."""

from __future__ import annotations

from pathlib import Path

EMBEDDED_FILE = "darcyflow-nb201-v3.h5"
# The generated Darcy Flow set the embedded table was trained on (`nb360 data generate darcyflow` settings);
# the main job generates the same files, so searches on the table and retraining use the same data.
EMBEDDED_DATA = {"n_train": 300, "n_test": 100, "resolution": 15, "seed": 0}
# The `mat_body_sha256` (the bytes after the MAT header's free text) of the embedded set, computed on 2026-11-23
# from the inputs of the first embedded table, whose header text held the creation time. The v2 and v3 tables were
# trained on files generated with nb360's fixed header text, whose full sha256 its record holds; all the tables'
# data are these bodies. `tests/test_main_job.py` regenerates the set and checks them.
EMBEDDED_DATA_BODY_SHA256 = {
    "darcyflow_generated_train.mat": "931b7c0b3bfd9b598abd23d0f3b7e3faeb07965d91334fe1f87a0b8f1a8b026d",
    "darcyflow_generated_test.mat": "db11151d0f6c472e6f5d84266ac93eae7004624dcbf5804ab962ce5c3cea7665",
}


def embedded_table_path() -> Path:
    """Path of the embedded Darcy Flow NB201 table inside the installed package."""
    return Path(__file__).resolve().parent.parent / "resources" / EMBEDDED_FILE
