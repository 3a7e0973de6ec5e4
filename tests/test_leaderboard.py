"""The honest leaderboard: no run that is not comparable is ever drawn among the published results.

The tests read the figure's data back from its axes (which panel each bar is in, its label, the axis
labels), not pixels.
"""

from __future__ import annotations

from pathlib import Path

from nb360.report.format import mean_std
from nb360.report.leaderboard import group_of, plot_leaderboard

REFS = [{"kind": "reference", "label": "WRN / default", "value": 6.78, "std": 0.26, "seeds": None,
         "source": "baselines.png"},
        {"kind": "reference", "label": "DARTS / GAEA", "value": 17.67, "std": 1.39, "seeds": None,
         "source": "baselines.png"},
        {"kind": "reference", "label": "AMBER / ENAS", "value": None, "std": None, "seeds": None, "source": "x"}]


def _run(label: str, value: float, seeds: int, comparable: bool, why: str | None = None) -> dict:
    return {"kind": "run", "label": label, "run": f"run-{label}", "value": value, "std": 0.5 if seeds > 1 else None,
            "seeds": seeds, "comparable": comparable, "why_apart": why, "source": "nb360"}


def test_runs_that_are_not_comparable_get_their_own_panel(tmp_path: Path) -> None:
    entries = REFS + [_run("full-protocol", 7.0, 3, True),
                      _run("generated", 0.2, 1, False, "generated data"),  # e.g. the main job's 15x15 Darcy runs
                      _run("shortened", 50.0, 2, False, "shortened protocol"),
                      _run("fixture", 90.0, 1, False, "fixture data")]
    drawn = plot_leaderboard(entries, tmp_path / "lb.png", units="0-1 error (%), lower is better; mean +- std over "
                             "three seeds", metric="0-1 error (%)", title="t")
    assert (tmp_path / "lb.png").read_bytes().startswith(b"\x89PNG")
    published, apart = drawn["panels"]
    labels = [b["label"] for b in published["bars"]]
    assert labels == ["WRN / default (published, 3 seeds)", "full-protocol [run-full-protocol] (3 seeds)",
                      "DARTS / GAEA (published, 3 seeds)"]
    assert [b["value"] for b in published["bars"]] == [6.78, 7.0, 17.67]
    assert {b["label"].split(" [")[0] for b in apart["bars"]} == {"generated", "shortened", "fixture"}
    for bar in apart["bars"]:
        assert bar["label"] not in labels  # never on the published rows' axis
    assert "NOT comparable" in apart["title"] and "generated data" in apart["title"].replace("\n", " ")
    assert "1 seed)" in apart["bars"][0]["label"] and "seed" in apart["bars"][-1]["label"]
    assert "mean +- std over three seeds" in published["xlabel"]
    assert "none for one seed" in apart["xlabel"] and "three seeds" not in apart["xlabel"]


def test_published_panel_alone_when_every_run_is_apart_and_groups(tmp_path: Path) -> None:
    entries = REFS + [_run("generated", 0.2, 1, False, "generated data")]
    drawn = plot_leaderboard(entries, tmp_path / "lb.png", units="u", metric="m", title="t")
    assert [p["title"] for p in drawn["panels"]][0] == "Published results (NAS-Bench-360)"
    assert [group_of(e) for e in entries] == ["published", "published", "published", "apart"]


def test_one_seed_prints_no_plus_minus() -> None:
    assert mean_std(0.0731, 0.0, 1) == "0.0731 (1 seed)"
    assert mean_std(0.0731, 0.002, 3) == "0.0731 ± 0.002"


def test_a_report_of_fixture_runs_puts_them_apart(tmp_path: Path) -> None:
    """End to end: tiny evaluate runs on fixture files (released layout) are drawn apart and labelled as such."""
    import torch

    from nb360.evaluate import EvalSpec, evaluate
    from nb360.report import leaderboard_entries, load_run, write_report
    from task_fixtures import build_ninapro

    torch.set_num_threads(1)
    build_ninapro(tmp_path / "ninapro", sizes=(24, 8, 8))
    runs = []
    for name, seeds in (("one", (0,)), ("two", (0, 1))):
        runs.append(tmp_path / name)
        evaluate(EvalSpec(task="ninapro", data_root=str(tmp_path / "ninapro"), arch=0, seeds=seeds, epochs=1,
                          channels=2, cells=1), runs[-1], progress=False, command=["test"])
    entries = leaderboard_entries([load_run(r) for r in runs])
    assert [group_of(e) for e in entries if e["kind"] == "run"] == ["apart", "apart"]
    assert {e["why_apart"] for e in entries if e["kind"] == "run"} == {"fixture data"}
    text = write_report(runs, tmp_path / "report").read_text()
    board = text.split("## Leaderboard")[1].split("\n## ")[0]
    one = next(line for line in board.splitlines() if "`one`" in line)
    two = next(line for line in board.splitlines() if "`two`" in line)
    assert "(1 seed) |" in one and "±" not in one and "| 1 seed |" in one
    assert "±" in two and "| 2 seeds |" in two
    assert "NOT comparable (fixture data)" in one
