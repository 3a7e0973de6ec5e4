"""Mutation fuzzing of the table reader: no signal, no hang, no internal error, no wrong value.

Each mutant (bit flips in the nb360 header, the HDF5 superblock and object headers, the JSON index,
the chunk checksums and the data; zeroed spans; truncations; forged sizes, i.e. size fields changed
with their metadata checksums recomputed, as a deliberate forger would) is written to disk and
exercised in its own forked process with an alarm: open, single and batched queries, scalars,
whole-run views, info, verify. The parent classifies how each child ended:

* an nb360 DataError (corrupt, truncated, changed) on any call is fine;
* any answer must equal the answer of the unmutated table for the same call, else "wrong value";
* any other exception is an "internal error", a signal a "crash", the alarm a "hang".

Run by hand for long campaigns:  python tests/fuzz_table.py TABLE.h5 --iterations 100000 --seed 1
tests/test_table_fuzz.py runs a few hundred seeded mutants in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import struct
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from nb360 import _table
from nb360.errors import DataError, Nb360Error
from nb360.table import Table

USER_BLOCK = 4096
EXIT_OK, EXIT_INTERNAL, EXIT_WRONG = 0, 4, 5


# ---------------------------------------------------------------------------------------------- the calls
def calls(t: Table) -> list[tuple[str, Any]]:
    """(name, zero-argument call) for every kind of query, over every run of the table."""
    out: list[tuple[str, Any]] = []
    for run in t.runs:
        kw = {"seed": run.seed, "hp": run.hp, "task": run.task}
        tag = f"{run.task}/{run.hp}/{run.seed}"
        for arch in (0, 11, 284, 15624):
            for metric in run.metrics[:3]:
                for epoch in (0, -1):
                    out.append((f"query {tag} {arch} {metric} {epoch}",
                                lambda a=arch, m=metric, e=epoch, k=kw: t.query(a, m, e, **k)))
            for scalar in run.scalars[:2]:
                out.append((f"scalar {tag} {arch} {scalar}", lambda a=arch, s=scalar, k=kw: t.scalar(a, s, **k)))
        out.append((f"batch {tag}", lambda m=run.metrics[0], k=kw: t.query_batch(np.arange(0, 15625, 97), m, -1,
                                                                                  missing="nan", **k)))
        out.append((f"curve {tag}", lambda m=run.metrics[-1], k=kw: t.curve(11, m, with_mask=True, **k)))
        out.append((f"arrays {tag}", lambda k=kw: _summary(t.arrays(**k))))
        out.append((f"archs {tag}", lambda k=kw: t.archs(**k)))
    out.append(("info", lambda: json.dumps({k: v for k, v in t.info().items() if k != "path"}, sort_keys=True,
                                           default=str)))
    out.append(("verify", t.verify))
    return out


def _summary(arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple:
    ids, curves, present = arrays
    return ids.tobytes(), curves.tobytes(), present.tobytes()


def outcome(call: Any) -> tuple:
    """('value', v) | ('missing',) | ('data_error',) | ('input_error', type); other exceptions propagate."""
    try:
        value = call()
    except DataError:
        return ("data_error",)
    except LookupError:
        return ("missing",)
    except Nb360Error as exc:
        return ("input_error", type(exc).__name__)
    if isinstance(value, np.ndarray) or (isinstance(value, tuple) and value and isinstance(value[0], np.ndarray)):
        value = tuple(np.asarray(v).tobytes() for v in (value if isinstance(value, tuple) else (value,)))
    elif isinstance(value, float):
        value = struct.pack("<d", value)  # bit-exact, NaN-safe
    return ("value", value)


def reference(path: Path) -> dict[str, tuple]:
    """The outcome of every call on the unmutated table."""
    t = Table.open(path)
    return {name: outcome(call) for name, call in calls(t)}


def exercise(path: str, expected: dict[str, tuple]) -> int:
    """Run every call on a mutant; the exit code for the parent (see the module docstring)."""
    try:
        t = Table.open(path)
    except DataError:
        return EXIT_OK
    for name, call in calls(t):
        got = outcome(call)
        if got[0] == "data_error":
            continue
        want = expected.get(name)
        if got != want:
            print(f"wrong answer from {name}: {str(got)[:200]} (unmutated: {str(want)[:200]})", file=sys.stderr)
            return EXIT_WRONG
    return EXIT_OK


# ---------------------------------------------------------------------------------------------- mutations
def object_headers(path: Path) -> list[int]:
    """Absolute offsets of the HDF5 object headers the reader parses (the index and every run dataset)."""
    t = Table.open(path)
    addresses = [t._file.index_address]
    for run in t.runs:
        addresses += list(run.datasets.values())
        if run.chunk_checksums:
            addresses.append(run.chunk_checksums["address"])
    return [USER_BLOCK + a for a in addresses]


def regions(path: Path) -> dict[str, list[int]]:
    """Offsets worth mutating, by kind."""
    t = Table.open(path)
    size = path.stat().st_size
    index = t._file.dataset_info(t._file.index_address)
    data, sums = [], []
    for run in t.runs:
        for address in run.datasets.values():
            d = t._file.dataset_info(address)
            data += [d["offset"] + k for k in range(0, d["nbytes"], max(1, d["nbytes"] // 64))]
        d = t._file.dataset_info(run.chunk_checksums["address"])
        sums += range(d["offset"], d["offset"] + d["nbytes"])
    headers = [o for start in object_headers(path) for o in range(start, start + 200)]
    out = {"header": list(range(0, 60)), "superblock": list(range(USER_BLOCK, USER_BLOCK + 48)), "ohdr": headers,
           "index": list(range(index["offset"], index["offset"] + index["nbytes"])), "data": data, "sums": sums}
    return {k: [o for o in v if o < size] for k, v in out.items()}


def _ohdr_chunk(buf: bytearray, start: int) -> tuple[int, int, int] | None:
    """(first message, end of messages, checksum offset) of a v2 object header, or None."""
    if buf[start:start + 4] != b"OHDR":
        return None
    flags = buf[start + 5]
    pos = start + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 3)
    size = int.from_bytes(buf[pos:pos + width], "little")
    begin = pos + width
    if begin + size + 4 > len(buf):
        return None
    return begin, begin + size, begin + size


def _forge_object_header(buf: bytearray, start: int, rng: random.Random) -> None:
    """Change a dimension or the data size/address of a dataset, then recompute the header's checksum."""
    found = _ohdr_chunk(buf, start)
    if found is None:
        return
    begin, end, checksum_at = found
    flags = buf[start + 5]
    fields: list[tuple[int, int]] = []  # (offset, width) of size-like fields
    pos = begin
    while pos + 4 <= end:
        mtype, msize = buf[pos], int.from_bytes(buf[pos + 1:pos + 3], "little")
        body = pos + 4 + (2 if flags & 0x04 else 0)
        if mtype == 0x01:  # dataspace: version, rank, flags, [type], dims
            rank = buf[body + 1]
            first = body + (4 if buf[body] == 2 else 8)
            fields += [(first + 8 * i, 8) for i in range(rank)]
        elif mtype == 0x08 and buf[body + 1] == 1:  # contiguous layout: address, size
            fields += [(body + 2, 8), (body + 10, 8)]
        pos = body + msize
    if not fields:
        return
    at, width = rng.choice(fields)
    old = int.from_bytes(buf[at:at + width], "little")
    new = rng.choice([old + 1, max(old - 1, 0), old * 2, old + 4096, 0, 2**40, 2**63 - 1, rng.randrange(1 << 32)])
    buf[at:at + width] = (new & ((1 << 64) - 1)).to_bytes(width, "little")
    buf[checksum_at:checksum_at + 4] = struct.pack("<I", _table.lookup3(bytes(buf[start:checksum_at])))


def _forge_header(buf: bytearray, rng: random.Random) -> None:
    """Change the index address or length in the nb360 header and recompute both header checksums."""
    at = rng.choice([16, 40])
    old = struct.unpack_from("<Q", buf, at)[0]
    struct.pack_into("<Q", buf, at, rng.choice([old + 1, max(old - 8, 0), old * 2, 2**40, 0]) & (2**64 - 1))
    struct.pack_into("<I", buf, 24, _table.lookup3(bytes(buf[:24])))
    struct.pack_into("<I", buf, 56, _table.lookup3(bytes(buf[:56])))


def _forge_superblock(buf: bytearray, rng: random.Random) -> None:
    """Change the end-of-file or root address of the superblock and recompute its checksum."""
    at = USER_BLOCK + rng.choice([12, 20, 28, 36])
    old = struct.unpack_from("<Q", buf, at)[0]
    struct.pack_into("<Q", buf, at, rng.choice([old + 1, max(old - 1, 0), old * 2, 2**40]) & (2**64 - 1))
    struct.pack_into("<I", buf, USER_BLOCK + 44, _table.lookup3(bytes(buf[USER_BLOCK:USER_BLOCK + 44])))


def mutate(data: bytes, rng: random.Random, where: dict[str, list[int]], headers: list[int]) -> tuple[bytes, str]:
    """One random corruption of the table bytes and a label saying what it was."""
    buf = bytearray(data)
    kind = rng.random()
    if kind < 0.5:
        region = rng.choice([r for r in where if where[r]])
        for _ in range(rng.randint(1, 4)):
            pos = rng.choice(where[region])
            buf[pos] ^= 1 << rng.randrange(8)
        return bytes(buf), f"flip {region}"
    if kind < 0.6:
        region = rng.choice([r for r in where if where[r]])
        pos = rng.choice(where[region])
        n = rng.randint(1, 64)
        buf[pos:pos + n] = bytes(len(buf[pos:pos + n]))
        return bytes(buf), f"zero {region}"
    if kind < 0.75:
        return bytes(buf[: rng.randrange(len(buf))]), "truncate"
    if kind < 0.9:
        _forge_object_header(buf, rng.choice(headers), rng)
        return bytes(buf), "forge object header"
    if kind < 0.95:
        _forge_header(buf, rng)
        return bytes(buf), "forge nb360 header"
    _forge_superblock(buf, rng)
    return bytes(buf), "forge superblock"


# ---------------------------------------------------------------------------------------------- the campaign
def run_child(path: str, expected: dict[str, tuple], timeout: int) -> int:
    """Fork a process that exercises one mutant; return its raw wait status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into the parent's code
        code = EXIT_INTERNAL
        try:
            signal.alarm(timeout)
            code = exercise(path, expected)
        except BaseException:  # noqa: BLE001 (anything else is a bug in nb360)
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def fuzz(table: Path, iterations: int, seed: int, timeout: int = 20) -> dict[str, Any]:
    """Run `iterations` mutants of `table`; count outcomes and list failures (iteration, mutation, how)."""
    data = table.read_bytes()
    where = regions(table)
    headers = object_headers(table)
    expected = reference(table)
    counts: dict[str, int] = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(iterations):
            rng = random.Random(seed * 1_000_003 + i)
            mutant, label = mutate(data, rng, where, headers)
            target = os.path.join(tmp, f"mutant-{i}.h5")
            Path(target).write_bytes(mutant)
            status = run_child(target, expected, timeout)
            os.unlink(target)
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                how = "hang" if sig == signal.SIGALRM else f"crash (signal {signal.Signals(sig).name})"
            else:
                how = {EXIT_OK: None, EXIT_INTERNAL: "internal error", EXIT_WRONG: "wrong value"}.get(
                    os.WEXITSTATUS(status), f"exit {os.WEXITSTATUS(status)}")
            counts[label] = counts.get(label, 0) + 1
            if how is not None:
                failures.append(f"iteration {i} (seed {seed}, {label}): {how}")
    return {"mutants": iterations, "by_mutation": counts, "failures": failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=20, help="seconds a mutant may take before it counts as a hang")
    args = parser.parse_args()
    result = fuzz(args.table, args.iterations, args.seed, args.timeout)
    print(json.dumps(result, indent=1))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
