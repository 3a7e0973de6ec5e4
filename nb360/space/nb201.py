"""The NAS-Bench-201 cell space: arch strings, op tuples, indices, matrices, isomorphism, moves.

A cell has 4 nodes; node j sums an operation applied to every earlier node, giving 6 edges in
arch-string order 0→1, 0→2, 1→2, 0→3, 1→3, 2→3 and the string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``. Indices follow the NAS-Bench-201 / NATS-Bench order
(the released files' ``meta_archs``). Imports no torch and no numpy at module load.

An ``Arch`` argument may be an index (int), an arch string, a tuple of 6 op names, or a tuple of
6 op ids; every function validates it and raises ``InputError`` naming the bad part.
"""

from __future__ import annotations

import array
import base64
import functools
import random
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

from ..errors import InputError

if TYPE_CHECKING:
    import numpy as np

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))  # (source, target)
NUM_NODES = 4
NUM_EDGES = len(EDGES)
NUM_OPS = len(OPS)
NUM_ARCHS = NUM_OPS**NUM_EDGES  # 15,625
NUM_UNIQUE = 6466  # isomorphism classes (checked by the tests against canonical())

Arch = Union[int, str, Sequence[str], Sequence[int]]

_OP_ID = {name: i for i, name in enumerate(OPS)}
_POWERS = tuple(NUM_OPS ** (NUM_EDGES - 1 - e) for e in range(NUM_EDGES))


@functools.cache
def _order() -> tuple[array.array, array.array]:
    """(code of each index, index of each code), decoded once from the shipped order."""
    from ._nb201_order import ORDER_B64

    codes = array.array("H")
    codes.frombytes(base64.b64decode(ORDER_B64))
    if sys.byteorder != "little":
        codes.byteswap()
    index_of_code = array.array("l", [0]) * NUM_ARCHS
    for index, code in enumerate(codes):
        index_of_code[code] = index
    return codes, index_of_code


def _ids_to_code(ids: Sequence[int]) -> int:
    return sum(i * p for i, p in zip(ids, _POWERS))


def _code_to_ids(code: int) -> tuple[int, ...]:
    return tuple((code // p) % NUM_OPS for p in _POWERS)


def parse(arch_string: str) -> tuple[str, ...]:
    """Parse an arch string into its 6 op names (arch-string edge order); errors name the bad token."""
    if not isinstance(arch_string, str):
        raise InputError(f"expected an arch string, got {type(arch_string).__name__}")
    groups = arch_string.split("+")
    if len(groups) != NUM_NODES - 1:
        raise InputError(f"arch string {arch_string!r} has {len(groups)} node groups separated by '+', expected 3 "
                         "(form |op~0|+|op~0|op~1|+|op~0|op~1|op~2|)")
    ops: list[str] = []
    for target, group in enumerate(groups, start=1):
        if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
            raise InputError(f"node group {group!r} of {arch_string!r} must start and end with '|'")
        tokens = group[1:-1].split("|")
        if len(tokens) != target:
            raise InputError(f"node group {group!r} of {arch_string!r} has {len(tokens)} edges; node {target} "
                             f"needs {target} (one from each earlier node)")
        for source, token in enumerate(tokens):
            op, sep, src = token.partition("~")
            if not sep or op not in _OP_ID:
                raise InputError(f"bad token {token!r} in {arch_string!r}: expected op~{source} with op one of "
                                 f"{', '.join(OPS)}")
            if src != str(source):
                raise InputError(f"bad token {token!r} in {arch_string!r}: edge {len(ops)} into node {target} must "
                                 f"come from node {source} ('{op}~{source}')")
            ops.append(op)
    return tuple(ops)


def op_ids(arch: Arch) -> tuple[int, ...]:
    """The 6 op ids (indices into OPS) of an arch, in arch-string edge order."""
    if isinstance(arch, bool):
        raise InputError("an arch cannot be a bool")
    if isinstance(arch, int) or _is_integer(arch):
        index = int(arch)
        if not 0 <= index < NUM_ARCHS:
            raise InputError(f"arch index {index} is out of range: NB201 indices run from 0 to {NUM_ARCHS - 1}")
        return _code_to_ids(_order()[0][index])
    if isinstance(arch, str):
        return tuple(_OP_ID[o] for o in parse(arch))
    if isinstance(arch, Sequence) or hasattr(arch, "__len__"):
        items = list(arch)
        if len(items) != NUM_EDGES:
            raise InputError(f"an op tuple needs {NUM_EDGES} entries (one per edge), got {len(items)}: {items!r}")
        if all(isinstance(x, str) for x in items):
            bad = [x for x in items if x not in _OP_ID]
            if bad:
                raise InputError(f"unknown op {bad[0]!r} in {items!r}: ops are {', '.join(OPS)}")
            return tuple(_OP_ID[x] for x in items)
        if all(_is_integer(x) and not isinstance(x, bool) for x in items):
            ids = tuple(int(x) for x in items)
            bad = [x for x in ids if not 0 <= x < NUM_OPS]
            if bad:
                raise InputError(f"op id {bad[0]} in {ids!r} is out of range 0..{NUM_OPS - 1}")
            return ids
        raise InputError(f"an op tuple must hold all op names or all op ids, got {items!r}")
    raise InputError(f"cannot read an NB201 arch from {type(arch).__name__} {arch!r}: give an index, an arch string "
                     "or a tuple of 6 ops")


def _is_integer(x: object) -> bool:
    return hasattr(x, "__index__") and not isinstance(x, (str, bytes))


def ops(arch: Arch) -> tuple[str, ...]:
    """The 6 op names of an arch, in arch-string edge order."""
    return tuple(OPS[i] for i in op_ids(arch))


def to_str(arch: Arch) -> str:
    """The canonical arch string of an arch."""
    o = ops(arch)
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def index_of(arch: Arch) -> int:
    """The NAS-Bench-201 / NATS-Bench index of an arch."""
    return _order()[1][_ids_to_code(op_ids(arch))]


def arch_str(index: int) -> str:
    """The arch string at an NAS-Bench-201 / NATS-Bench index."""
    if isinstance(index, str) or not _is_integer(index):
        raise InputError(f"arch_str takes an index, got {type(index).__name__} {index!r}")
    return to_str(int(index))


@functools.cache
def _all_arch_strs() -> tuple[str, ...]:
    by_code = [f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|" for a in OPS for b in OPS for c in OPS for d in OPS
               for e in OPS for f in OPS]  # code order: the first edge varies slowest, as _POWERS encodes
    return tuple(by_code[code] for code in _order()[0])


def all_arch_strs() -> list[str]:
    """The 15,625 arch strings in index order (the released files' meta_archs), built once."""
    return list(_all_arch_strs())


def to_matrix(arch: Arch) -> list[list[int]]:
    """The 4×4 op matrix of NATS-Bench's str2matrix: m[target][source] = op id (0 where no edge)."""
    m = [[0] * NUM_NODES for _ in range(NUM_NODES)]
    for (source, target), op in zip(EDGES, op_ids(arch)):
        m[target][source] = op
    return m


def from_matrix(matrix: Sequence[Sequence[int]]) -> int:
    """The index of the arch whose str2matrix is `matrix` (entries above the diagonal must be 0)."""
    rows = [list(map(int, row)) for row in matrix]
    if len(rows) != NUM_NODES or any(len(r) != NUM_NODES for r in rows):
        raise InputError(f"an NB201 op matrix is {NUM_NODES}×{NUM_NODES}, got {len(rows)} rows")
    for t in range(NUM_NODES):
        for s in range(t, NUM_NODES):
            if rows[t][s] != 0:
                raise InputError(f"matrix entry [{t}][{s}] = {rows[t][s]} is not an edge of the cell (must be 0)")
    return index_of(tuple(rows[t][s] for s, t in EDGES))


def unique_str(arch: Arch) -> str:
    """NAS-Bench-201's isomorphism key (Structure.to_unique_str(consider_zero=True)).

    Skip connections are inlined, zero ops and ops fed by a zero node become '#', and the inputs of
    each node are sorted; archs with equal keys compute the same function.
    """
    ids = op_ids(arch)
    nodes = {0: "0"}
    edge = 0
    for target in range(1, NUM_NODES):
        terms = []
        for source in range(target):
            op = OPS[ids[edge]]
            edge += 1
            if op == "none" or nodes[source] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(nodes[source])
            else:
                terms.append(f"({nodes[source]})@{op}")
        nodes[target] = "+".join(sorted(terms))
    return nodes[NUM_NODES - 1]


@functools.cache
def _canonical_table() -> array.array:
    """canonical index of every index: the smallest index in its isomorphism class."""
    rep: dict[str, int] = {}
    table = array.array("l", [0]) * NUM_ARCHS
    for index in range(NUM_ARCHS):
        table[index] = rep.setdefault(unique_str(index), index)
    return table


def canonical(arch: Arch) -> int:
    """The index representing the arch's isomorphism class (the smallest index in the class)."""
    return _canonical_table()[index_of(arch)]


def is_canonical(arch: Arch) -> bool:
    """True when the arch is its isomorphism class's representative."""
    index = index_of(arch)
    return _canonical_table()[index] == index


def neighbours(arch: Arch) -> list[int]:
    """Indices of every arch that differs in exactly one edge's op (24 of them), edge by edge."""
    ids = list(op_ids(arch))
    out = []
    for e in range(NUM_EDGES):
        for op in range(NUM_OPS):
            if op != ids[e]:
                out.append(index_of(tuple(ids[:e] + [op] + ids[e + 1 :])))
    return out


def mutate(arch: Arch, rng: random.Random) -> int:
    """One random edge set to a different op, uniformly (the NAS-Bench-201 REA mutation)."""
    ids = list(op_ids(arch))
    edge = rng.randrange(NUM_EDGES)
    ids[edge] = rng.choice([op for op in range(NUM_OPS) if op != ids[edge]])
    return index_of(tuple(ids))


def sample(rng: random.Random, unique: bool = False) -> int:
    """A uniformly random index; with unique=True, a uniformly random isomorphism-class representative."""
    if unique:
        return rng.choice(unique_indices())
    return rng.randrange(NUM_ARCHS)


@functools.cache
def unique_indices() -> tuple[int, ...]:
    """The representative index of every isomorphism class, ascending."""
    table = _canonical_table()
    return tuple(i for i in range(NUM_ARCHS) if table[i] == i)


def op_id_array() -> "np.ndarray":
    """A (15625, 6) uint8 numpy array of op ids per index, for vectorised search."""
    import numpy as np

    codes, _ = _order()
    c = np.frombuffer(codes, dtype=np.uint16).astype(np.int64)
    return ((c[:, None] // np.array(_POWERS)) % NUM_OPS).astype(np.uint8)


def canonical_array() -> "np.ndarray":
    """A (15625,) int64 numpy array: canonical index of every index."""
    import numpy as np

    return np.frombuffer(_canonical_table(), dtype=np.int64 if array.array("l").itemsize == 8 else np.int32).astype(
        np.int64)
