"""Performance profiles (Dolan & Moré, as NAS-Bench-360 draws them) on a hand-computed example."""

from __future__ import annotations

import math

import pytest

from nb360.errors import InputError
from nb360.report.profiles import DEFINITION, performance_profile, plot_profiles, profile_table, rho_at

# errors (lower is better) of three methods on four tasks; C has no result on t4
VALUES = {"A": {"t1": 10.0, "t2": 0.50, "t3": 2.0, "t4": 4.0},
          "B": {"t1": 20.0, "t2": 0.25, "t3": 2.0, "t4": 5.0},
          "C": {"t1": 12.0, "t2": 1.00, "t3": 6.0, "t4": None}}
TASKS = ["t1", "t2", "t3", "t4"]


def test_ratios_and_profile_match_the_hand_computation() -> None:
    p = performance_profile(VALUES, TASKS)
    # best per task: t1 10 (A), t2 0.25 (B), t3 2 (A and B tie), t4 4 (A)
    assert p["best"] == {"t1": 10.0, "t2": 0.25, "t3": 2.0, "t4": 4.0}
    assert p["ratios"]["A"] == {"t1": 1.0, "t2": 2.0, "t3": 1.0, "t4": 1.0}
    assert p["ratios"]["B"] == {"t1": 2.0, "t2": 1.0, "t3": 1.0, "t4": 1.25}
    assert p["ratios"]["C"]["t1"] == pytest.approx(1.2) and p["ratios"]["C"]["t2"] == 4.0
    assert p["ratios"]["C"]["t3"] == 3.0 and math.isinf(p["ratios"]["C"]["t4"])  # no result: never within any τ
    assert p["taus"] == pytest.approx([1.0, 1.2, 1.25, 2.0, 3.0, 4.0])
    # ρ(τ) = fraction of the 4 tasks with ratio <= τ, by hand:
    assert p["rho"]["A"] == [0.75, 0.75, 0.75, 1.0, 1.0, 1.0]
    assert p["rho"]["B"] == [0.5, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert p["rho"]["C"] == [0.0, 0.25, 0.25, 0.25, 0.5, 0.75]  # t4 missing: C never reaches 1
    assert rho_at(p["ratios"]["B"], TASKS, 1.1) == 0.5 and rho_at(p["ratios"]["C"], TASKS, 1e9) == 0.75
    table = profile_table(p, (1.0, 2.0))
    assert table == [["A", "0.75", "1.00", "4/4"], ["B", "0.50", "1.00", "4/4"], ["C", "0.00", "0.25", "3/4"]]


def test_a_zero_best_and_negative_values() -> None:
    p = performance_profile({"A": {"t": 0.0}, "B": {"t": 0.3}}, ["t"])
    assert p["ratios"]["A"]["t"] == 1.0 and math.isinf(p["ratios"]["B"]["t"])
    with pytest.raises(InputError, match="negative"):
        performance_profile({"A": {"t": -1.0}, "B": {"t": 1.0}}, ["t"])
    with pytest.raises(InputError, match="at least one task"):
        performance_profile(VALUES, [])


def test_the_definition_is_stated_and_the_plot_is_drawn(tmp_path) -> None:
    assert "r = v / min v" in DEFINITION and "ρ(τ)" in DEFINITION and "r = ∞" in DEFINITION
    plot_profiles(performance_profile(VALUES, TASKS), tmp_path / "p.png", title="hand example")
    assert (tmp_path / "p.png").read_bytes().startswith(b"\x89PNG")


def test_published_rows_reproduce_nas_bench_360s_winners() -> None:
    """On the cards' published rows, ρ(1) counts each method's bold (best) entries of the README table."""
    from nb360.tasks import list_tasks

    values: dict[str, dict[str, float | None]] = {}
    tasks = [card.name for card in list_tasks("nb360")]  # the README table: the ten NAS-Bench-360 tasks
    for card in list_tasks("nb360"):
        for row in card.reference_results["rows"]:
            values.setdefault(f"{row['method']} / {row['variant']}", {})[card.name] = row.get("value")
    p = performance_profile(values, tasks)
    wins = {m: round(p["rho"][m][0] * len(tasks)) for m in p["methods"]}
    # baselines.png bold: GAEA 5 (Spherical, Darcy, PSICOV, Cosmic, Satellite), WRN 2 (CIFAR-100, NinaPro),
    # AMBER 2 (ECG, DeepSEA), DenseNAS random 1 (FSD50K)
    assert wins["DARTS / GAEA"] == 5 and wins["WRN / default"] == 2 and wins["AMBER / ENAS"] == 2
    assert wins["DenseNAS / random"] == 1 and sum(wins.values()) == len(tasks)
