"""`nb360 search --protocol` and `--method all` from the command line, and the protocol docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nb360.search.tabular.protocol import NB360, PROTOCOLS, RULES, differences

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def structured(structured_table_path: Path) -> Path:
    return structured_table_path


def test_method_all_writes_one_table_and_one_plot(structured: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    from nb360.cli import main
    from nb360.search.tabular import ALGORITHMS

    out = tmp_path / "all"
    assert main(["search", "--method", "all", "--table", str(structured), "--budget", "300", "--repeats", "20",
                 "--iterations", "2", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "protocol nb360" in text and "| bohb | nb360 | 20 |" in text
    summary = json.loads((out / "summary.json").read_text())
    assert [m["method"] for m in summary["methods"]] == list(ALGORITHMS) and summary["budget"] == 300
    for name in ("comparison.csv", "comparison.md", "trajectories.csv", "plots/comparison.png"):
        assert (out / name).exists(), name
    header = (out / "trajectories.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["time", "rs_mean", "rs_std"] and "bohb_std" in header
    for method in ALGORITHMS:
        config = json.loads((out / method / "config.json").read_text())
        assert config["protocol"] == "nb360" and (out / method / "queries.csv").exists()
    stops = {m["method"]: m["stops"] for m in summary["methods"]}
    assert stops["rs"] == "at the budget" and stops["bohb"].startswith("after the iterations")


def test_protocol_option_and_defaults(structured: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from nb360.cli import main

    for protocol, lr in (("nb360", 0.01), ("nb201", 0.5)):
        out = tmp_path / protocol
        assert main(["search", "--method", "reinforce", "--table", str(structured), "--budget", "300", "--repeats",
                     "3", "--protocol", protocol, "--out", str(out), "--no-progress", "--no-plots"]) == 0
        config = json.loads((out / "config.json").read_text())
        assert config["protocol"] == protocol and config["learning_rate"] == lr
    assert f"protocol {protocol}" in capsys.readouterr().out
    # NAS-Bench-360's Hyperband needs no budget: it runs its iterations
    assert main(["search", "--method", "hyperband", "--table", str(structured), "--iterations", "1", "--out",
                 str(tmp_path / "hb"), "--no-progress", "--no-plots"]) == 0
    assert "1 iterations (the budget stops nothing" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["search", "--method", "rs", "--table", str(structured), "--protocol", "nb101", "--out",
              str(tmp_path / "x")])
    assert exc.value.code == 2


def test_the_docs_table_is_the_protocols() -> None:
    doc = (ROOT / "docs" / "search-protocols.md").read_text()
    assert differences(markdown=True) in doc  # regenerate with `python -m nb360.search.tabular.protocol`
    assert {f for f, *_ in RULES} == set(NB360.to_dict()) - {"name", "multi_fidelity_iterations"}
    assert set(PROTOCOLS) == {"nb360", "nb201"}


def test_task_cards_cite_public_sources_not_a_development_path() -> None:
    from nb360.tasks import get_task

    # the ten tasks cite NAS-Bench-360's repository, the E2RNAS suite the E2RNAS authors' (each at a commit)
    sources = {"nb360": ("rtu715/NAS-Bench-360", "587bb09"), "e2rnas": ("yuezhixiong/NAS-Benchmark", "5db6e2d")}
    for card in sorted((ROOT / "tasks").glob("*.toml")):
        first = card.read_text().splitlines()[0]
        repo, commit = sources[get_task(card.stem).suite]
        assert "/work/" not in first and repo in first and commit in first, card.name


def test_bohb_on_the_embedded_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from nb360.cli import main
    from nb360.table.embedded import embedded_table_path

    out = tmp_path / "bohb"
    assert main(["search", "--method", "bohb", "--table", str(embedded_table_path()), "--repeats", "5",
                 "--iterations", "30", "--max-budget", "4", "--out", str(out), "--no-progress", "--no-plots",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # budgets 4 and 4/3 epochs: two levels, 6 queries per 2 iterations
    assert summary["protocol"] == "nb360" and summary["queries_mean"] == 15 * 6
    config = json.loads((out / "config.json").read_text())
    assert config["bohb"] == {"num_samples": 4, "random_fraction": 0.0, "bandwidth_factor": 3.0,
                              "min_bandwidth": 0.3, "top_n_percent": 15}
