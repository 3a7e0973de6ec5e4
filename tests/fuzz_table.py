"""Mutation fuzzing of the table reader: corrupt, truncated and bit-flipped tables must raise nb360 errors.

Run by hand for long campaigns:  python tests/fuzz_table.py TABLE.h5 --iterations 100000 --seed 1
tests/test_table_format.py runs it briefly in a subprocess (so a crash would show as a signal).
Every mutated file must either open and answer queries, or raise an nb360.errors.Nb360Error;
any other exception is a bug and stops the run with the reproducing seed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

from nb360.errors import Nb360Error
from nb360.table import Table


def interesting_offsets(path: Path) -> list[int]:
    """Offsets of metadata worth mutating: the nb360 header, the superblock, object headers, the index."""
    table = Table.open(path)
    offsets = list(range(0, 32)) + list(range(4096, 4096 + 48))
    addresses = [table._file.index_address] + [a for r in table.runs for a in r.datasets.values()]
    for address in addresses:
        offsets += range(4096 + address, 4096 + address + 256)
    index_info = table._file.dataset_info(table._file.index_address)
    offsets += range(index_info["offset"], index_info["offset"] + index_info["nbytes"])
    return [o for o in offsets if o < path.stat().st_size]


def mutate(data: bytes, rng: random.Random, hot: list[int]) -> bytes:
    """One random corruption: bit flips (mostly in metadata), a zeroed span, or a truncation."""
    buf = bytearray(data)
    kind = rng.random()
    if kind < 0.6:
        for _ in range(rng.randint(1, 8)):
            pos = rng.choice(hot) if rng.random() < 0.9 else rng.randrange(len(buf))
            buf[pos] ^= 1 << rng.randrange(8)
    elif kind < 0.75:
        pos = rng.choice(hot)
        buf[pos:pos + rng.randint(1, 64)] = bytes(min(64, len(buf) - pos))[: rng.randint(1, 64)]
    elif kind < 0.9:
        buf = buf[: rng.randrange(len(buf))]
    else:
        pos = rng.choice(hot)
        buf[pos:pos + 8] = rng.choice([b"\xff" * 8, b"\x00" * 8, (2**62).to_bytes(8, "little")])
    return bytes(buf)


def exercise(path: str) -> None:
    """Open a table and run every kind of query on it."""
    t = Table.open(path)
    for run in t.runs:
        for arch in (0, 11, 284, 15624):
            for metric in run.metrics[:3]:
                try:
                    t.query(arch, metric, -1, seed=run.seed, hp=run.hp, task=run.task)
                except Nb360Error:
                    pass
        t.query_batch(np.arange(0, 15625, 97), run.metrics[0], -1, seed=run.seed, hp=run.hp, task=run.task,
                      missing="nan")
        ids, curves, present = t.arrays(hp=run.hp, task=run.task, seed=run.seed)
        float(np.nansum(curves[present]))
    t.info()
    t.verify()


def fuzz(table: Path, iterations: int, seed: int) -> dict[str, int]:
    """Run `iterations` mutations; return how many opened fine and how many raised nb360 errors."""
    data = table.read_bytes()
    hot = interesting_offsets(table)
    counts = {"ok": 0, "nb360_error": 0}
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, "mutant.h5")
        for i in range(iterations):
            rng = random.Random(seed * 1_000_003 + i)
            Path(target).write_bytes(mutate(data, rng, hot))
            try:
                exercise(target)
                counts["ok"] += 1
            except Nb360Error:
                counts["nb360_error"] += 1
            except Exception as exc:
                raise SystemExit(f"iteration {i} (seed {seed}) raised {type(exc).__name__}: {exc}") from exc
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(fuzz(args.table, args.iterations, args.seed)))


if __name__ == "__main__":
    sys.exit(main())
