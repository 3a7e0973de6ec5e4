"""nb360.space.nb201: order, conversions, parse errors, isomorphism, moves (no torch)."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys

import numpy as np
import pytest

from nats_records import meta_archs
from nb360.errors import InputError
from nb360.space import nb201


def test_order_matches_the_released_meta_archs() -> None:
    released = meta_archs()  # the real NATS-Bench meta file
    assert [nb201.arch_str(i) for i in range(nb201.NUM_ARCHS)] == released
    assert all(nb201.index_of(a) == i for i, a in enumerate(released))


def test_order_is_the_nb201_derivation() -> None:
    names = ["|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*t) for t in itertools.product(nb201.OPS, repeat=6)]
    random.seed(88)
    random.shuffle(names)
    assert names[:50] == [nb201.arch_str(i) for i in range(50)]


@pytest.mark.parametrize(("index", "arch"), [
    (0, "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"),
    (1, "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"),
    (9, "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"),
    (11, "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"),
    (123, "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"),
    (284, "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|nor_conv_1x1~1|none~2|"),
])
def test_known_indices(index: int, arch: str) -> None:
    # Indices quoted by the NAS-Bench-360 precompute code and the NATS-Bench fixtures.
    assert nb201.arch_str(index) == arch
    assert nb201.index_of(arch) == index


def test_every_encoding_round_trips() -> None:
    for i in range(0, nb201.NUM_ARCHS, 7):
        s = nb201.arch_str(i)
        ops = nb201.ops(i)
        ids = nb201.op_ids(i)
        assert nb201.parse(s) == ops
        assert nb201.index_of(ops) == nb201.index_of(ids) == nb201.index_of(s) == i
        assert nb201.from_matrix(nb201.to_matrix(i)) == i
        assert nb201.to_str(ids) == s


def test_matrix_matches_nats_str2matrix_convention() -> None:
    m = nb201.to_matrix(1)  # |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|
    assert m == [[0, 0, 0, 0], [3, 0, 0, 0], [3, 4, 0, 0], [1, 3, 1, 0]]
    with pytest.raises(InputError, match="not an edge"):
        nb201.from_matrix([[0, 1, 0, 0], [3, 0, 0, 0], [3, 4, 0, 0], [1, 3, 1, 0]])


@pytest.mark.parametrize(("bad", "message"), [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "2 node groups"),
    ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "bad token 'conv_5x5~0'"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must come from node 0"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must start and end with '|'"),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "bad token 'none0'"),
])
def test_parse_errors_name_the_bad_part(bad: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("|", r"\|").replace("(", r"\(")):
        nb201.index_of(bad)


@pytest.mark.parametrize("bad", [-1, 15625, ("none",) * 5, (0, 1, 2, 3, 4, 5), ("none",) * 5 + ("conv",), 3.5,
                                 True, None])
def test_bad_archs_raise_input_error(bad) -> None:
    with pytest.raises(InputError):
        nb201.index_of(bad)


def test_numpy_integers_are_indices() -> None:
    assert nb201.arch_str(np.int64(11)) == nb201.arch_str(11)
    assert nb201.index_of(np.int32(284)) == 284


def test_isomorphism_classes() -> None:
    assert len(nb201.unique_indices()) == nb201.NUM_UNIQUE == 6466  # NATS-Bench issue #43
    canon = nb201.canonical_array()
    for i in range(0, nb201.NUM_ARCHS, 13):
        c = nb201.canonical(i)
        assert c <= i and canon[i] == c and nb201.canonical(c) == c
        assert nb201.unique_str(c) == nb201.unique_str(i)
    # skip -> identity: an all-skip cell equals a cell whose node 3 reads node 0 through one skip path
    all_skip = nb201.index_of(("skip_connect",) * 6)
    assert nb201.is_canonical(nb201.canonical(all_skip))
    # zero ops: archs differing only in an op fed by a zero node are the same computation
    a = nb201.index_of(("none", "nor_conv_3x3", "nor_conv_3x3", "none", "none", "nor_conv_3x3"))
    b = nb201.index_of(("none", "nor_conv_3x3", "avg_pool_3x3", "none", "none", "nor_conv_3x3"))
    assert nb201.canonical(a) == nb201.canonical(b)


def test_neighbours_and_mutation() -> None:
    rng = random.Random(0)
    for _ in range(50):
        i = nb201.sample(rng)
        neigh = nb201.neighbours(i)
        assert len(neigh) == len(set(neigh)) == 24 and i not in neigh
        for j in neigh:
            assert sum(x != y for x, y in zip(nb201.op_ids(i), nb201.op_ids(j))) == 1
        m = nb201.mutate(i, rng)
        assert m in neigh
        assert nb201.sample(rng, unique=True) in set(nb201.unique_indices())


def test_op_id_array_matches_op_ids() -> None:
    table = nb201.op_id_array()
    assert table.shape == (nb201.NUM_ARCHS, 6)
    for i in (0, 1, 11, 284, 15624):
        assert tuple(table[i]) == nb201.op_ids(i)


def test_space_and_table_import_without_torch() -> None:
    code = ("import sys, nb360.space.nb201 as s, nb360.table, nb360.compat.nats; s.canonical(5); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
