"""The DARTS cell space (no torch): genotype text round trips, parse errors, the DARTS discretisation rule, sizes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import namedtuple

import pytest

from nb360.errors import InputError
from nb360.space import darts

# The genotype as DARTS's repository writes it (quark0/darts cnn/genotypes.py, DARTS_V2: lists for the concats).
DARTS_V2_TEXT = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
                 "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
                 "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
                 "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
                 "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


def test_the_space_has_the_darts_ops_edges_and_stride2_edges() -> None:
    assert darts.PRIMITIVES == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                                "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
    assert darts.NUM_EDGES == 14 and len(darts.EDGES) == 14
    assert [t for _s, t in darts.EDGES] == [2] * 2 + [3] * 3 + [4] * 4 + [5] * 5
    # search-methods.md §1.4: FactorizedReduce on edges 0, 1, 2, 3, 5, 6, 9, 10 of reduction cells
    assert darts.STRIDE2_EDGES == (0, 1, 2, 3, 5, 6, 9, 10)
    assert [darts.edge_index(t, s) for s, t in darts.EDGES] == list(range(14))
    with pytest.raises(InputError, match="no edge 4 -> 3"):
        darts.edge_index(3, 4)


def test_genotype_text_round_trips_and_reads_darts_own_text() -> None:
    g = darts.parse(DARTS_V2_TEXT)
    assert g == darts.published("DARTS_V2")
    text = darts.to_str(g)
    assert text.startswith("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1),")
    assert "normal_concat=range(2, 6)" in text and text.endswith("reduce_concat=range(2, 6))")
    assert darts.parse(text) == g and str(g) == text
    assert darts.parse(json.dumps(darts.to_json(g))) == g
    assert darts.resolve("DARTS_V2") == g and darts.resolve(darts.to_json(g)) == g
    # a namedtuple from another codebase (the DARTS repos' own Genotype) is accepted
    Other = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")
    assert darts.validate(Other(list(g.normal), range(2, 6), list(g.reduce), range(2, 6))) == g
    for seed in range(20):
        r = darts.sample(random.Random(seed))
        assert darts.parse(darts.to_str(r)) == r
    # non-contiguous concats print as lists
    odd = darts.make(g.normal, g.reduce, [2, 4, 5], [3])
    assert "normal_concat=[2, 4, 5]" in darts.to_str(odd) and darts.parse(darts.to_str(odd)) == odd


@pytest.mark.parametrize("text,match", [
    ("Genotype(normal=[('sep_conv_9x9', 0)] * 8)", "cannot read"),  # an expression, not a literal
    (DARTS_V2_TEXT.replace("dil_conv_3x3", "dil_conv_9x9"), "unknown op 'dil_conv_9x9'"),
    (DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "input 5 of pair 7 of the normal cell"),
    (DARTS_V2_TEXT.replace("('sep_conv_3x3', 0), ", "", 1), "needs 8 .* got 7"),
    ("Genotype(normal=__import__('os').system('true'))", "cannot read"),
    ("Genotype(normal=[], bogus=[])", "unknown genotype field 'bogus'"),
    ("Genome(normal=[])", "must be a `Genotype"),
    ("Genotype(normal=[", "cannot parse genotype text"),
    ('{"normal": [["sep_conv_3x3", 0]]}', "lacks reduce"),
    ("{not json", "malformed"),
    ("", "empty genotype"),
])
def test_bad_genotype_text_names_the_problem(text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        darts.parse(text)


def test_bad_concats_and_pairs_are_refused() -> None:
    g = darts.published("DARTS_V1")
    with pytest.raises(InputError, match="normal_concat must hold distinct nodes"):
        darts.make(g.normal, g.reduce, [2, 2, 3], darts.CONCAT)
    with pytest.raises(InputError, match="reduce_concat must hold distinct nodes 0..5"):
        darts.make(g.normal, g.reduce, darts.CONCAT, [6])
    with pytest.raises(InputError, match="pair 0 of the reduce cell must be"):
        darts.make(g.normal, ["max_pool_3x3"] * 8)
    with pytest.raises(InputError, match="unknown published genotype"):
        darts.published("DARTS_V3")


def _weights(rows: dict[int, dict[str, float]], base: float = 0.1) -> list[list[float]]:
    """A 14×8 weight matrix: `base` everywhere, with the given (edge -> {op: weight}) entries."""
    W = [[base] * darts.NUM_OPS for _ in range(darts.NUM_EDGES)]
    for e, ops in rows.items():
        for op, w in ops.items():
            W[e][darts.PRIMITIVES.index(op)] = w
    return W


def test_discretisation_keeps_the_two_strongest_edges_with_their_strongest_non_none_op() -> None:
    e = darts.edge_index
    normal = _weights({
        # node 2: edge from 1 is strongest (sep3 0.6), edge from 0 next (dil5 0.5)
        e(2, 0): {"dil_conv_5x5": 0.5}, e(2, 1): {"sep_conv_3x3": 0.6},
        # node 3: `none` is the largest weight anywhere but never counts; inputs 2 (skip .4) and 0 (avg .3)
        e(3, 0): {"avg_pool_3x3": 0.3}, e(3, 1): {"none": 0.99}, e(3, 2): {"skip_connect": 0.4},
        # node 4: inputs 3 and 1
        e(4, 1): {"max_pool_3x3": 0.7}, e(4, 3): {"sep_conv_5x5": 0.8},
        # node 5: all ties at 0.1 -> the reference's stable sort keeps inputs 0, 1 and the first op (max_pool_3x3)
    })
    reduce = _weights({e(2, 0): {"skip_connect": 0.9}, e(2, 1): {"dil_conv_3x3": 0.2}})
    g = darts.discretize(normal, reduce)
    assert g.normal == (("sep_conv_3x3", 1), ("dil_conv_5x5", 0), ("skip_connect", 2), ("avg_pool_3x3", 0),
                        ("sep_conv_5x5", 3), ("max_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1))
    assert g.reduce[:2] == (("skip_connect", 0), ("dil_conv_3x3", 1))
    assert g.normal_concat == g.reduce_concat == (2, 3, 4, 5)
    assert all(op != "none" for op, _ in g.normal + g.reduce)


def test_edge_weights_scale_the_op_weights_before_the_edge_choice() -> None:
    e = darts.edge_index
    normal = _weights({e(3, 0): {"sep_conv_3x3": 0.5}, e(3, 1): {"dil_conv_3x3": 0.4},
                       e(3, 2): {"avg_pool_3x3": 0.3}})
    plain = darts.discretize_cell(normal)
    assert plain[2:4] == (("sep_conv_3x3", 0), ("dil_conv_3x3", 1))
    edges = [1.0] * 14
    edges[e(3, 0)] = 0.1  # PC-DARTS: W[j, :] *= W2[j]; the first edge falls below the third
    scaled = darts.discretize_cell(normal, edges)
    assert scaled[2:4] == (("dil_conv_3x3", 1), ("avg_pool_3x3", 2))


def test_discretisation_refuses_bad_weights() -> None:
    with pytest.raises(InputError, match="14×8"):
        darts.discretize_cell([[0.1] * 8] * 13)
    with pytest.raises(InputError, match="NaN"):
        darts.discretize_cell([[float("nan")] * 8] * 14)
    with pytest.raises(InputError, match="14 entries"):
        darts.discretize_cell([[0.1] * 8] * 14, [1.0] * 3)


def test_selection_counts_the_kept_edge_ops() -> None:
    g = darts.published("DARTS_V2")
    sel = darts.selection(g, "normal")
    assert sum(map(sum, sel)) == 8
    # node 2 keeps sep_conv_3x3 from 0 and from 1; node 5 keeps skip from 0 and dil_conv_3x3 from 2
    assert sel[darts.edge_index(2, 0)][darts.PRIMITIVES.index("sep_conv_3x3")] == 1
    assert sel[darts.edge_index(5, 2)][darts.PRIMITIVES.index("dil_conv_3x3")] == 1
    for target in range(2, 6):  # two kept edges per node
        assert sum(sum(sel[r]) for r in darts.node_edges(target)) == 2


def test_every_published_genotype_is_valid_and_sourced() -> None:
    assert {"DARTS_V1", "DARTS_V2"} <= set(darts.PUBLISHED)
    for name, (g, source) in darts.PUBLISHED.items():
        assert darts.validate(g) == g and source, name
        assert darts.parse(name) == g


def test_op_param_cost_is_e2rnas_u_of_c() -> None:
    # search-methods.md §1.4: u(C) = [0, 0, 0, 0, 2(C²+11C), 2(C²+27C), C²+11C, C²+27C]; FactorizedReduce C²+2C
    for C in (4, 16, 36):
        u = [darts.op_param_cost(op, C) for op in darts.PRIMITIVES]
        assert u == [0, 0, 0, 0, 2 * (C * C + 11 * C), 2 * (C * C + 27 * C), C * C + 11 * C, C * C + 27 * C]
        assert darts.op_param_cost("skip_connect", C, stride=2) == C * C + 2 * C
    with pytest.raises(InputError, match="unknown op"):
        darts.op_param_cost("conv_7x1_1x7", 16)


def test_the_space_imports_without_torch() -> None:
    code = "import sys, nb360.space.darts as d; d.parse('DARTS_V2'); assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_the_e2rnas_authors_genotypes_are_published_names_with_their_source() -> None:
    names = [n for n in darts.PUBLISHED if n.startswith("E2RNAS_")]
    assert {"E2RNAS_V1_cifar10", "E2RNAS_V1_cifar100", "E2RNAS_V1_svhn", "E2RNAS_PCDARTS_cifar10"} <= set(names)
    for name in names:
        genotype, source = darts.PUBLISHED[name]
        assert "yuezhixiong/NAS-Benchmark" in source and "genotypes.py@" in source
        assert darts.parse(name) == genotype == darts.parse(darts.to_str(genotype))
    # spot check against the authors' file (DARTS/genotypes.py, fgsm_nop_min_svhn): first and last pairs
    svhn = darts.published("E2RNAS_V1_svhn")
    assert svhn.normal[0] == ("skip_connect", 1) and svhn.reduce[-1] == ("avg_pool_3x3", 1)
