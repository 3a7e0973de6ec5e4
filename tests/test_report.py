"""`nb360 report`: Markdown with results tables, learning curves and a leaderboard against the reference results.

The run directories come from tiny `nb360 evaluate` runs on the SYNTHETIC NinaPro fixture files of
tests/task_fixtures.py (NB201 C=2, N=1, 2 epochs).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nb360.errors import DataError, InputError
from nb360.evaluate import EvalSpec, evaluate
from nb360.report import leaderboard_entries, load_run, write_report

ARCHS = ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
         "|skip_connect~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|skip_connect~1|none~2|")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two finished runs of different archs and one interrupted after its first epoch."""
    import torch

    from task_fixtures import build_ninapro

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("report")
    build_ninapro(tmp / "ninapro", sizes=(60, 20, 16))
    out = {}
    for name, arch in zip(("a", "b"), ARCHS):
        out[name] = tmp / f"run-{name}"
        evaluate(EvalSpec(task="ninapro", data_root=str(tmp / "ninapro"), arch=arch, seeds=(0, 1), epochs=2,
                          channels=2, cells=1), out[name], progress=False, command=["test"])

    def stop(seed: int, epoch: int) -> None:
        raise KeyboardInterrupt

    out["unfinished"] = tmp / "run-unfinished"
    with pytest.raises(KeyboardInterrupt):
        evaluate(EvalSpec(task="ninapro", data_root=str(tmp / "ninapro"), arch=ARCHS[0], seeds=(0,), epochs=2,
                          channels=2, cells=1), out["unfinished"], progress=False, epoch_hook=stop)
    torch.set_num_threads(threads)
    return out


def test_one_run_report_has_results_reference_source_and_curves(runs: dict[str, Path], tmp_path: Path) -> None:
    path = write_report([runs["a"]], tmp_path)
    text = path.read_text()
    results = json.loads((runs["a"] / "results.json").read_text())
    assert "| seed | error | reported | test loss | train loss |" in text
    for r in results["per_seed"]:
        assert re.search(rf"^\| {r['seed']} \| {r['test']['error']:.4g} \|", text, re.M)
    s = results["summary"]["reported"]
    assert f"{s['mean']:.4g} ± {s['std']:.4g}" in text
    assert "**shortened** from the card's 200 epochs" in text
    assert "source: NAS-Bench-360 README images/baselines.png" in text and "| WRN / default | 6.78 ± 0.26 |" in text
    assert "Leaderboard" not in text  # one run: no leaderboard
    curves = re.findall(r"!\[learning curves of run-a\]\((.+\.png)\)", text)
    assert len(curves) == 1 and (tmp_path / curves[0]).read_bytes().startswith(PNG)


def test_several_runs_get_a_leaderboard_against_the_reference_results(runs: dict[str, Path], tmp_path: Path) -> None:
    path = write_report([runs["a"], runs["b"], runs["unfinished"]], tmp_path)
    text = path.read_text()
    assert "## Leaderboard: NinaPro DB5 (ninapro)" in text
    assert (tmp_path / "leaderboard-ninapro.png").read_bytes().startswith(PNG)
    assert "**Unfinished**" in text and f"--out {runs['unfinished']}" in text and "seed 0: 1/2" in text
    assert "nb360 run `run-a`" in text and "nb360 run `run-b`" in text
    entries = leaderboard_entries([load_run(runs[k]) for k in ("a", "b", "unfinished")])
    values = [e["value"] for e in entries if e["value"] is not None]
    assert values == sorted(values) and len([e for e in entries if e["kind"] == "run"]) == 2
    assert [e["label"] for e in entries if e["value"] is None] == ["Auto-DL / DARTS", "AMBER / ENAS"]
    # ranks restart in each group: the published rows, then the runs that are not comparable (fixture data, shortened)
    board = text.split("## Leaderboard")[1].split("![leaderboard")[0]
    ranked = re.findall(r"^\| (\d+) \| (published|NOT comparable)[^|]*\|", board, re.M)
    published = [int(r) for r, g in ranked if g == "published"]
    apart = [int(r) for r, g in ranked if g == "NOT comparable"]
    assert published == list(range(1, len(values) - 1)) and apart == [1, 2]
    assert "NOT comparable (fixture data)" in board
    # performance profiles of the two models (one task here: the better one has ρ(1) = 1, the other 0)
    profiles = text.split("## Performance profiles")[1].split("\n## ")[0]
    assert "compared with each other only" in profiles and (tmp_path / "profile-runs.png").exists()
    rho1 = sorted(re.findall(r"^\| NB201 #\d+ \(C=2, N=1\) \| (\d\.\d\d) \|", profiles, re.M))
    assert rho1 == ["0.00", "1.00"] or rho1 == ["1.00", "1.00"]  # a tie counts for both


def test_bad_run_directories_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a directory"):
        write_report([tmp_path / "missing"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not an nb360 evaluate run directory"):
        write_report([tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(InputError, match="at least one run directory"):
        write_report([], tmp_path / "out")


def test_cli_report_writes_into_the_run_directory_by_default(runs: dict[str, Path], capsys: pytest.CaptureFixture,
                                                             tmp_path: Path) -> None:
    from nb360.cli import main

    assert main(["report", str(runs["b"])]) == 0
    report_dir = runs["b"] / "report"
    assert capsys.readouterr().out.split() == ["report:", str(report_dir / "report.md"), "html:", str(report_dir / "report.html")]
    assert main(["report", str(runs["a"]), str(runs["b"]), "--out", str(tmp_path / "r"), "--no-plots"]) == 0
    assert (tmp_path / "r" / "report.md").exists() and not list((tmp_path / "r").glob("*.png"))
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_report_imports_no_torch() -> None:
    code = "import sys, nb360.report; assert 'torch' not in sys.modules, 'torch'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_search_run_directory_is_a_clear_error(tmp_path: Path) -> None:
    run = tmp_path / "rea-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"method": "rea", "budget": 100}))
    (run / "genotype.json").write_text("{}")
    with pytest.raises(DataError, match=r"holds a search run .* `nb360 evaluate`"):
        load_run(run)


def test_generated_data_is_labelled_and_never_comparable(runs: dict[str, Path]) -> None:
    from nb360.evaluate import describe_data, summarize
    from nb360.tasks import get_task

    results = json.loads((runs["a"] / "results.json").read_text())
    assert results["data"] == {"source": "released", "test_items": 16}  # the fixture's size, not the released 659
    assert "a fixture or a subset" in results["reference"]["comparable"]["note"]
    config = json.loads((runs["a"] / "config.json").read_text())
    generated = {"source": "generated", "generator": {"generator": "nb360.data.darcy_generator", "seed": 0,
                                                     "n": {"train": 300, "test": 100}, "resolution": 15}}
    summary = summarize(config, results["per_seed"], get_task("ninapro"), generated)
    assert summary["reference"]["comparable"]["method"] is None
    assert "generated stand-in" in summary["reference"]["comparable"]["note"]
    assert describe_data(generated) == ("GENERATED stand-in (300 train + 100 test, 15x15, seed 0, "
                                        "nb360.data.darcy_generator), not the released data")
