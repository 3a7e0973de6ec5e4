"""nb360.space.sss: NATS-Bench's size space, checked against the released meta file."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nats_records import SSS_FIXTURE_DIR, load_fixture, meta_archs
from nb360.errors import InputError
from nb360.space import for_table, nb201, sss


def test_index_order_is_the_released_meta_archs() -> None:
    archs = meta_archs(SSS_FIXTURE_DIR)
    assert len(archs) == sss.NUM_ARCHS == 32768
    assert sss.all_arch_strs() == archs
    for i in (0, 1, 11, 284, 4095, 32767):
        assert sss.arch_str(i) == archs[i] and sss.index_of(archs[i]) == i


def test_fixture_records_name_their_own_index_and_the_fixed_cell() -> None:
    for i in (0, 11, 284):
        record = load_fixture(f"{i:06d}.pickle.pbz2", SSS_FIXTURE_DIR)
        for state in record.values():
            assert sss.index_of(state["arch_str"]) == i
            config = next(iter(state["all_results"].values()))["arch_config"]
            assert config["channels"] == state["arch_str"] and config["genotype"] == sss.GENOTYPE


def test_encodings_round_trip() -> None:
    assert sss.channels("16:40:56:24:40") == (16, 40, 56, 24, 40)
    assert sss.index_of((16, 40, 56, 24, 40)) == sss.index_of("16:40:56:24:40") == sss.index_of(["16", 40, 56, 24, 40])
    assert sss.to_str(sss.index_of("64:8:8:8:64")) == "64:8:8:8:64"
    assert len(set(sss.neighbours(11))) == 5 * 7 and 11 not in sss.neighbours(11)
    assert 0 <= sss.sample() < sss.NUM_ARCHS


@pytest.mark.parametrize("bad, message", [
    ("16:40:56:24", "4 layers"), ("16:40:56:24:41", "layer 4"), ("16:40:56:24:x", "layer 4"), (32768, "out of range"),
    (-1, "out of range"), (True, "bool"), (3.5, "cannot read"), ((8, 8, 8), "5 channel counts"),
])
def test_bad_archs_are_named(bad, message) -> None:
    with pytest.raises(InputError, match=message):
        sss.index_of(bad)


def test_table_spaces_registry() -> None:
    assert for_table("sss") is sss and for_table("nb201") is nb201
    with pytest.raises(InputError, match="unknown table space"):
        for_table("darts")


def test_space_imports_without_torch() -> None:
    code = "import sys, nb360.space.sss as s; s.index_of('8:8:8:8:8'); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
