"""The DARTS cell space: genotypes, their text form, the DARTS discretisation rule, published genotypes.

A cell (normal or reduction) has two input nodes (the outputs of the two previous cells, 0 and 1)
and 4 intermediate nodes 2..5; intermediate node i+2 may take every earlier node, giving
2 + 3 + 4 + 5 = 14 edges, in the DARTS order (node 2 from 0, 1; node 3 from 0, 1, 2; ...). The
cell's output is the concatenation of nodes 2..5. A genotype keeps two (op, input) pairs per
node, in DARTS's `Genotype(normal, normal_concat, reduce, reduce_concat)` form (quark0/darts
`cnn/genotypes.py`), and prints as that form's text:

    Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), reduce=[...], reduce_concat=range(2, 6))

`parse` reads that text (without evaluating it: a literal-only reader), its JSON form
{"normal": [[op, input], ...], ...}, or the name of a published genotype (`PUBLISHED`).
`discretize` is the DARTS rule (`model_search.py::genotype`): per node keep the two incoming
edges whose strongest non-`none` weight is largest, each with its strongest non-`none` op; with
edge weights (PC-DARTS / GAEA edge normalisation) the op weights of an edge are first scaled by
its edge weight. Ties break as the reference's stable sort and strict `>`: lower index first.

Imports no torch and no numpy; every function validates its input and raises `InputError` naming
the bad part.
"""

from __future__ import annotations

import ast
import json
import random
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Union

from ..errors import InputError
from .published_genotypes import RAW

PRIMITIVES: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                               "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
NUM_OPS = len(PRIMITIVES)
STEPS = 4  # intermediate nodes per cell
NUM_INPUT_NODES = 2
# (source node, target node) of every edge, in the DARTS order of the α rows.
EDGES: tuple[tuple[int, int], ...] = tuple((j, i + NUM_INPUT_NODES) for i in range(STEPS)
                                           for j in range(i + NUM_INPUT_NODES))
NUM_EDGES = len(EDGES)  # 14
CONCAT: tuple[int, ...] = tuple(range(NUM_INPUT_NODES, NUM_INPUT_NODES + STEPS))  # (2, 3, 4, 5)
CELL_TYPES = ("normal", "reduce")
# Edges out of the two input nodes: stride 2 in a reduction cell (skip_connect is FactorizedReduce there).
STRIDE2_EDGES: tuple[int, ...] = tuple(e for e, (source, _t) in enumerate(EDGES) if source < NUM_INPUT_NODES)
NONE = PRIMITIVES.index("none")

Cell = tuple[tuple[str, int], ...]


class Genotype(NamedTuple):
    """A DARTS genotype: two (op, input node) pairs per intermediate node for each cell type, and the concat."""

    normal: Cell
    normal_concat: tuple[int, ...]
    reduce: Cell
    reduce_concat: tuple[int, ...]

    def __str__(self) -> str:
        return to_str(self)

    def cell(self, kind: str) -> Cell:
        """The pairs of the 'normal' or 'reduce' cell."""
        if kind not in CELL_TYPES:
            raise InputError(f"cell type must be 'normal' or 'reduce', got {kind!r}")
        return self.normal if kind == "normal" else self.reduce

    def concat(self, kind: str) -> tuple[int, ...]:
        """The concatenated nodes of the 'normal' or 'reduce' cell."""
        self.cell(kind)  # validates the name
        return self.normal_concat if kind == "normal" else self.reduce_concat


GenotypeLike = Union[Genotype, str, Mapping[str, Any]]


# ---------------------------------------------------------------------------------------------- edges
def edge_index(target: int, source: int) -> int:
    """Row of α for the edge source → target (target an intermediate node 2..5, source < target)."""
    if not (NUM_INPUT_NODES <= target < NUM_INPUT_NODES + STEPS) or not (0 <= source < target):
        raise InputError(f"no edge {source} -> {target} in a DARTS cell: targets are nodes 2..5 and a source must "
                         "be an earlier node")
    step = target - NUM_INPUT_NODES
    return sum(NUM_INPUT_NODES + i for i in range(step)) + source


def node_edges(target: int) -> range:
    """The α rows of the edges into intermediate node `target` (2..5)."""
    first = edge_index(target, 0)
    return range(first, first + target)


def incoming_counts() -> tuple[int, ...]:
    """Number of edges into each edge's target node, per edge (2, 2, 3, 3, 3, 4, ..., 5)."""
    return tuple(t for _s, t in EDGES)


# ---------------------------------------------------------------------------------------------- validation
def _check_cell(pairs: Any, kind: str) -> Cell:
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise InputError(f"the {kind} cell must be a list of (op, input) pairs, got {pairs!r}")
    if len(pairs) != 2 * STEPS:
        raise InputError(f"the {kind} cell needs {2 * STEPS} (op, input) pairs (two per node), got {len(pairs)}")
    out = []
    for k, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise InputError(f"pair {k} of the {kind} cell must be (op, input), got {pair!r}")
        op, source = pair
        if op not in PRIMITIVES:
            raise InputError(f"unknown op {op!r} in pair {k} of the {kind} cell: ops are {', '.join(PRIMITIVES)}")
        node = NUM_INPUT_NODES + k // 2
        if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source < node:
            raise InputError(f"input {source!r} of pair {k} of the {kind} cell (node {node}) must be an earlier node "
                             f"0..{node - 1}")
        out.append((str(op), int(source)))
    return tuple(out)


def _check_concat(concat: Any, kind: str) -> tuple[int, ...]:
    if isinstance(concat, range):
        concat = list(concat)
    if isinstance(concat, (str, bytes)) or not isinstance(concat, Sequence) or not concat:
        raise InputError(f"{kind}_concat must be a non-empty list of node indices, got {concat!r}")
    last = NUM_INPUT_NODES + STEPS
    if any(isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < last for n in concat) or \
            len(set(concat)) != len(concat):
        raise InputError(f"{kind}_concat must hold distinct nodes 0..{last - 1}, got {list(concat)!r}")
    return tuple(int(n) for n in concat)


def make(normal: Sequence[Sequence[Any]], reduce: Sequence[Sequence[Any]], normal_concat: Any = CONCAT,
         reduce_concat: Any = CONCAT) -> Genotype:
    """A validated Genotype from its parts."""
    return Genotype(_check_cell(normal, "normal"), _check_concat(normal_concat, "normal"),
                    _check_cell(reduce, "reduce"), _check_concat(reduce_concat, "reduce"))


def validate(genotype: Any) -> Genotype:
    """The genotype as a validated Genotype (a Genotype, a namedtuple with the four fields, or a mapping)."""
    if isinstance(genotype, Mapping):
        missing = [f for f in ("normal", "reduce") if f not in genotype]
        if missing:
            raise InputError(f"a genotype mapping needs 'normal' and 'reduce' (and optionally the concats), lacks "
                             f"{', '.join(missing)}")
        return make(genotype["normal"], genotype["reduce"], genotype.get("normal_concat", CONCAT),
                    genotype.get("reduce_concat", CONCAT))
    fields = getattr(genotype, "_fields", None)
    if fields is not None and tuple(fields) == Genotype._fields:
        return make(genotype.normal, genotype.reduce, genotype.normal_concat, genotype.reduce_concat)
    raise InputError(f"cannot read a DARTS genotype from {type(genotype).__name__}: give a Genotype, its text, its "
                     "JSON form or a published name")


# ---------------------------------------------------------------------------------------------- text
def _concat_str(concat: tuple[int, ...]) -> str:
    if len(concat) > 1 and concat == tuple(range(concat[0], concat[-1] + 1)):
        return f"range({concat[0]}, {concat[-1] + 1})"
    return repr(list(concat))


def to_str(genotype: GenotypeLike) -> str:
    """The DARTS text of a genotype (`Genotype(normal=[...], normal_concat=range(2, 6), ...)`)."""
    g = resolve(genotype)
    return (f"Genotype(normal={list(g.normal)!r}, normal_concat={_concat_str(g.normal_concat)}, "
            f"reduce={list(g.reduce)!r}, reduce_concat={_concat_str(g.reduce_concat)})")


def to_json(genotype: GenotypeLike) -> dict[str, Any]:
    """The genotype as JSON-ready data."""
    g = resolve(genotype)
    return {"normal": [list(p) for p in g.normal], "normal_concat": list(g.normal_concat),
            "reduce": [list(p) for p in g.reduce], "reduce_concat": list(g.reduce_concat)}


def _literal(node: ast.AST, text: str) -> Any:
    """A literal value of the genotype grammar: lists/tuples of strings and ints, or range(a, b)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("range", "list") \
            and not node.keywords:
        args = [_literal(a, text) for a in node.args]
        if node.func.id == "list" and len(args) == 1:
            return list(args[0])
        if node.func.id == "range" and 1 <= len(args) <= 3 and all(isinstance(a, int) for a in args):
            return list(range(*args))
        raise InputError(f"cannot read {ast.get_source_segment(text, node)!r} in a genotype: only range(a, b) and "
                         "literal lists are allowed")
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise InputError(f"cannot read {ast.get_source_segment(text, node)!r} in a genotype: expected literal "
                         "(op, input) pairs or a node list") from None


def parse(text: str) -> Genotype:
    """Read a genotype from DARTS text, its JSON form, or a published name (see `PUBLISHED`); never evaluates code."""
    if not isinstance(text, str):
        raise InputError(f"expected genotype text, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InputError("empty genotype text: give DARTS text `Genotype(normal=[...], ...)`, JSON or a published "
                         f"name ({', '.join(PUBLISHED)})")
    if stripped in PUBLISHED:
        return PUBLISHED[stripped][0]
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"genotype JSON is malformed ({exc})") from None
        return validate(data)
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as exc:
        raise InputError(f"cannot parse genotype text {stripped[:60]!r}...: {exc.msg} (expected "
                         "`Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), reduce=[...], "
                         "reduce_concat=range(2, 6))`)") from None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise InputError(f"genotype text must be a `Genotype(...)` expression, got {stripped[:60]!r}")
    values: dict[str, Any] = {}
    positional = list(Genotype._fields)
    if len(call.args) > len(positional):
        raise InputError(f"Genotype(...) takes at most {len(positional)} fields, got {len(call.args)}")
    for name, arg in zip(positional, call.args):
        values[name] = _literal(arg, stripped)
    for kw in call.keywords:
        if kw.arg not in Genotype._fields:
            raise InputError(f"unknown genotype field {kw.arg!r}: fields are {', '.join(Genotype._fields)}")
        if kw.arg in values:
            raise InputError(f"genotype field {kw.arg!r} given twice")
        values[kw.arg] = _literal(kw.value, stripped)
    return validate(values)


def resolve(genotype: GenotypeLike) -> Genotype:
    """A Genotype from a Genotype, text, JSON mapping or published name."""
    if isinstance(genotype, str):
        return parse(genotype)
    return validate(genotype)


# ---------------------------------------------------------------------------------------------- discretisation
def _matrix(weights: Any, rows: int, cols: int, what: str) -> list[list[float]]:
    if hasattr(weights, "tolist"):
        weights = weights.tolist()
    try:
        m = [[float(v) for v in row] for row in weights]
    except TypeError:
        raise InputError(f"{what} must be a {rows}×{cols} matrix of numbers") from None
    if len(m) != rows or any(len(r) != cols for r in m):
        raise InputError(f"{what} must be {rows}×{cols} (edges × ops), got {len(m)} rows of lengths "
                         f"{sorted({len(r) for r in m})}")
    if any(v != v for r in m for v in r):
        raise InputError(f"{what} contains NaN: the search diverged")
    return m


def _vector(weights: Any, size: int, what: str) -> list[float]:
    if hasattr(weights, "tolist"):
        weights = weights.tolist()
    try:
        v = [float(x) for x in weights]
    except TypeError:
        raise InputError(f"{what} must be a vector of {size} numbers") from None
    if len(v) != size:
        raise InputError(f"{what} must have {size} entries (one per edge), got {len(v)}")
    return v


def discretize_cell(weights: Any, edge_weights: Any = None) -> Cell:
    """The DARTS rule for one cell: (14, 8) op weights (and optional (14,) edge weights) → 8 (op, input) pairs."""
    W = _matrix(weights, NUM_EDGES, NUM_OPS, "op weights")
    if edge_weights is not None:
        E = _vector(edge_weights, NUM_EDGES, "edge weights")
        W = [[w * E[e] for w in row] for e, row in enumerate(W)]  # PC-DARTS: W[j, :] *= W2[j]
    gene: list[tuple[str, int]] = []
    for step in range(STEPS):
        target = NUM_INPUT_NODES + step
        rows = list(node_edges(target))

        def strength(j: int, rows: list[int] = rows) -> float:
            return max(W[rows[j]][k] for k in range(NUM_OPS) if k != NONE)

        # sorted() is stable: ties keep the lower input first, as the reference.
        for j in sorted(range(target), key=lambda j: -strength(j))[:2]:
            row = W[rows[j]]
            k_best = None
            for k in range(NUM_OPS):
                if k != NONE and (k_best is None or row[k] > row[k_best]):
                    k_best = k
            assert k_best is not None
            gene.append((PRIMITIVES[k_best], j))
    return tuple(gene)


def discretize(normal: Any, reduce: Any, normal_edges: Any = None, reduce_edges: Any = None) -> Genotype:
    """The DARTS genotype of op weights per cell type (each 14×8), optionally scaled by per-edge weights."""
    return Genotype(discretize_cell(normal, normal_edges), CONCAT, discretize_cell(reduce, reduce_edges), CONCAT)


def selection(genotype: GenotypeLike, kind: str) -> list[list[int]]:
    """A 14×8 count matrix: how often the genotype's `kind` cell uses op o on edge e (0, 1, or 2 for duplicates)."""
    g = resolve(genotype)
    out = [[0] * NUM_OPS for _ in range(NUM_EDGES)]
    for k, (op, source) in enumerate(g.cell(kind)):
        out[edge_index(NUM_INPUT_NODES + k // 2, source)][PRIMITIVES.index(op)] += 1
    return out


def sample(rng: random.Random, allow_none: bool = False) -> Genotype:
    """A uniformly random genotype: per node two distinct inputs, each with a random op (no `none` by default)."""
    ops = PRIMITIVES if allow_none else PRIMITIVES[1:]

    def cell() -> list[tuple[str, int]]:
        pairs = []
        for step in range(STEPS):
            for source in sorted(rng.sample(range(NUM_INPUT_NODES + step), 2)):
                pairs.append((rng.choice(ops), source))
        return pairs

    return make(cell(), cell())


# ---------------------------------------------------------------------------------------------- sizes
def op_param_cost(op: str, C: int, stride: int = 1, dim: int = 2) -> int:
    """Parameters of one evaluation-network op at width C (affine BN, no conv bias): E2RNAS's u(C).

    2D, in PRIMITIVES order: 0, 0, 0, 0 (FactorizedReduce C²+2C at stride 2), 2(C²+11C), 2(C²+27C),
    C²+11C, C²+27C (search-methods.md §1.4; `architect.param_number`). `dim=1` gives the 1D
    variant (k taps instead of k²).
    """
    if op not in PRIMITIVES:
        raise InputError(f"unknown op {op!r}: ops are {', '.join(PRIMITIVES)}")
    if C < 1 or stride not in (1, 2) or dim not in (1, 2):
        raise InputError(f"need C >= 1, stride 1 or 2 and dim 1 or 2, got C={C}, stride={stride}, dim={dim}")
    bn = 2 * C
    if op in ("none", "max_pool_3x3", "avg_pool_3x3"):
        return 0
    if op == "skip_connect":
        return 0 if stride == 1 else C * C + bn  # two C -> C/2 1x1 convs + BN
    k = int(op[-1])
    taps = k ** dim
    one = taps * C + C * C + bn  # depthwise k, pointwise 1x1, BN
    return 2 * one if op.startswith("sep") else one


# ---------------------------------------------------------------------------------------------- published
# name -> (genotype, source): DARTS's, NAS-Bench-360's GAEA and the E2RNAS authors' genotypes (published_genotypes.py)
PUBLISHED: dict[str, tuple[Genotype, str]] = {name: (make(*cells), source) for name, (cells, source) in RAW.items()}


def published(name: str) -> Genotype:
    """A published genotype by name (see `PUBLISHED` for names and sources)."""
    try:
        return PUBLISHED[name][0]
    except KeyError:
        raise InputError(f"unknown published genotype {name!r}: known {', '.join(PUBLISHED)}") from None


__all__ = ["CELL_TYPES", "CONCAT", "EDGES", "Genotype", "NUM_EDGES", "NUM_OPS", "PRIMITIVES", "PUBLISHED", "STEPS",
           "STRIDE2_EDGES", "discretize", "discretize_cell", "edge_index", "make", "node_edges", "op_param_cost",
           "parse", "published", "resolve", "sample", "selection", "to_json", "to_str", "validate"]
