"""`nb360 suite`: methods from the registries, refusals before any unit runs, skipped units, and (slow) the
README's grid end to end (benchmarks/suite_grid.py): 7 methods × 3 task shapes on SYNTHETIC fixture / generated
data with shortened protocols, killed with SIGKILL after some units, resumed, reported (tables, profiles, HTML).
CI runs it with one seed (about half the README's two-seed grid's time); the README gives the two-seed run.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nb360.cli import main
from nb360.errors import InputError
from nb360.suite import SuiteSpec, available_methods, resolve, run_suite, run_unit

ROOT = Path(__file__).resolve().parents[1]


def _grid_module():
    spec = importlib.util.spec_from_file_location("suite_grid", ROOT / "benchmarks" / "suite_grid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_methods_come_from_the_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    from nb360.search.supernet import config
    from nb360.search.tabular import ALGORITHMS

    before = available_methods()
    assert {"rea", "rs", "darts-nb201", "gaea-darts", "e2rnas-darts", "pcdarts-darts", "wrn", "wrn-asha",
            "xgboost"} <= set(before)
    assert "pcdarts-nb201" not in before  # default_config refuses PC-DARTS in NB201: so does the suite
    monkeypatch.setitem(ALGORITHMS, "newtab", ALGORITHMS["rs"])  # e.g. issue 16's BOHB
    monkeypatch.setattr(config, "METHODS", (*config.METHODS, "newws"))
    monkeypatch.setitem(config.METHOD_DEFAULTS, "newws", {})
    monkeypatch.setitem(config.DARTS_SPACE_DEFAULTS, "newws", {})
    after = available_methods()
    assert after["newtab"].kind == "tabular" and {"newws-nb201", "newws-darts"} <= set(after)
    assert [m.name for m in resolve(["gaea", "darts-nb201", "rea"], "darts")] == ["gaea-darts", "darts-nb201", "rea"]
    with pytest.raises(InputError, match="unknown suite method 'nope'"):
        resolve(["nope"], "darts")
    assert before["gaea-darts"].published == ("DARTS", "GAEA") and before["rea"].published is None


def test_the_cli_refuses_bad_grids_before_running(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = ["suite", "--data-root", str(tmp_path), "--out", str(tmp_path / "s")]
    assert main([*base, "--methods", "wrn", "--tasks", "nowhere"]) == 2
    assert "unknown task" in capsys.readouterr().err
    assert main([*base, "--methods", "wrn", "--tasks", "ninapro", "--xgb-rounds", "3"]) == 2
    assert "--xgb-rounds applies to none of the chosen methods" in capsys.readouterr().err
    assert main([*base, "--methods", "gaea", "--tasks", "ninapro", "--search-channels", "4"]) == 2
    assert "gaea-darts on ninapro: partial channels" in capsys.readouterr().err
    assert main([*base, "--methods", "wrn", "--tasks", "ninapro", "--seeds", "0", "0"]) == 2
    assert "lists a value twice" in capsys.readouterr().err
    assert main([*base, "--methods", "wrn", "--tasks", "ninapro"]) == 2  # no data: refused before any unit
    assert "ninapro" in capsys.readouterr().err and not (tmp_path / "s").exists()
    assert main(["suite", "--list-methods"]) == 0
    assert "gaea-darts" in capsys.readouterr().out


def test_units_that_cannot_run_are_skipped_with_the_reason(tmp_path: Path) -> None:
    spec = SuiteSpec(methods=("rea", "xgboost"), tasks=("psicov", "ninapro"), seeds=(0,), data_root=str(tmp_path))
    unit = run_unit(spec.to_dict(), str(tmp_path / "s"), "rea", "ninapro", 0)
    assert unit["status"] == "skipped" and "--table ninapro=PATH" in unit["reason"]
    unit = run_unit(spec.to_dict(), str(tmp_path / "s"), "xgboost", "psicov", 0)
    assert unit["status"] == "skipped" and "did not fit on a single V100" in unit["reason"]


def test_a_suite_directory_resumes_only_its_own_grid(tmp_path: Path) -> None:
    pytest.importorskip("xgboost")
    from task_fixtures import build_ninapro

    build_ninapro(tmp_path / "data" / "ninapro", sizes=(40, 12, 12))
    spec = SuiteSpec(methods=("xgboost",), tasks=("ninapro",), seeds=(0,), data_root=str(tmp_path / "data"),
                     xgb_rounds=3)
    lines: list[str] = []
    summary = run_suite(spec, tmp_path / "s", progress=False, say=lines.append)
    assert summary["done"] == 1 and summary["ran"] == 1 and "[1/1] xgboost × ninapro × seed 0" in lines[-1]
    again = run_suite(SuiteSpec(**{**spec.to_dict(), "seeds": (0,), "methods": ("xgboost",), "tasks": ("ninapro",),
                                   "workers": 2}), tmp_path / "s", progress=False, say=lines.append)
    assert again["ran"] == 0 and again["done"] == 1  # runtime settings may change; finished units are kept
    other = SuiteSpec(methods=("xgboost",), tasks=("ninapro",), seeds=(0,), data_root=str(tmp_path / "data"),
                      xgb_rounds=4)
    with pytest.raises(InputError, match="holds a suite with other settings .*xgb_rounds"):
        run_suite(other, tmp_path / "s", progress=False, say=lines.append)


# ------------------------------------------------------------------------------------------------ the grid (slow)
@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pytest.importorskip("ray.tune")
    pytest.importorskip("xgboost")
    module = _grid_module()
    out = tmp_path_factory.mktemp("grid")
    module.setup(out)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = module.command(out, ["0"])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    first = []
    for line in proc.stdout:  # kill -9 the whole suite while units are running
        if line.startswith("["):
            first.append(line)
            if len(first) == 5:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    # resume on a local Ray instance, two workers: one unit per Ray task (ASHA's trials Ray actors inside them)
    resumed = subprocess.run([*cmd, "--executor", "ray", "--workers", "2"], capture_output=True, text=True, env=env,
                             timeout=1500)
    report = subprocess.run([sys.executable, "-m", "nb360", "report", str(out / "suite")], capture_output=True,
                            text=True, env=env, timeout=300)
    return {"out": out, "first": first, "resumed": resumed, "report": report}


@pytest.mark.slow
def test_the_grid_runs_resumes_after_a_kill_and_reports(grid: dict) -> None:
    resumed, out = grid["resumed"], grid["out"]
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert len(grid["first"]) == 5
    head = resumed.stdout.splitlines()[0]
    assert "7 methods × 3 tasks × 1 seeds = 21 units, 5 already finished; running 16 on ray (2 workers)" in head
    results = json.loads((out / "suite" / "results.json").read_text())
    assert len(results["units"]) == 21 and all(u["status"] == "done" for u in results["units"])
    cells = {(c["method"], c["task"]): c for c in results["cells"]}
    assert all(c["n"] == 1 and c["std"] is None and not c["comparable"] for c in cells.values())  # one seed: no std
    assert cells[("xgboost", "darcyflow")]["data"] == ["generated"]
    assert cells[("wrn", "satellite")]["data"] == ["fixture"]
    assert "shortened protocol" in cells[("gaea-darts", "ninapro")]["not_comparable_because"]
    # every unit's retrain is an nb360 evaluate run; the tabular units searched their tables
    rea = json.loads((out / "suite" / "units" / "rea" / "darcyflow" / "seed-0" / "unit.json").read_text())
    assert rea["search"]["table"].endswith("darcyflow-nb201-v3.h5") and rea["search"]["arch"] >= 0
    gaea = json.loads((out / "suite" / "units" / "gaea-darts" / "ninapro" / "seed-0" / "unit.json").read_text())
    assert gaea["search"]["genotype"].startswith("Genotype(") and gaea["evaluate"]["protocol"]["shortened"]
    # a unit run on Ray equals the same unit run here (CPU: deterministic)
    spec = json.loads((out / "suite" / "suite.json").read_text())["spec"]
    for method in ("xgboost", "wrn"):
        on_ray = json.loads((out / "suite" / "units" / method / "satellite" / "seed-0" / "unit.json").read_text())
        here = run_unit(spec, str(out / "local-rerun"), method, "satellite", 0)
        assert here["status"] == "done" and here["evaluate"]["test"] == on_ray["evaluate"]["test"]


@pytest.mark.slow
def test_the_asha_units_tuned_with_ray_tune(grid: dict) -> None:
    from nb360.evaluate.asha import SETTINGS

    unit = grid["out"] / "suite" / "units" / "wrn-asha" / "ninapro" / "seed-0" / "evaluate"
    trials = json.loads((unit / "seed-0" / "tuning" / "trials.json").read_text())
    best = json.loads((unit / "seed-0" / "tuning" / "best.json").read_text())
    space = SETTINGS["ninapro"]
    assert len(trials["trials"]) == 2 == best["trials"]
    for t in trials["trials"]:
        h = t["hparams"]
        assert 1e-4 <= h["lr"] <= 1e-1 and 1e-5 <= h["weight_decay"] <= 1e-2
        assert h["momentum"] in space.momentum and h["dropout"] in space.dropout
    assert best["best_val"] == min(t["best_val"] for t in trials["trials"])
    results = json.loads((unit / "results.json").read_text())
    assert results["per_seed"][0]["tuned"]["hparams"] == best["hparams"]  # the retrain used the best trial
    assert results["model"]["tuning"]["trials"] == 2 and results["model"]["tuning"]["card_trials"] == 28
    assert results["reference"]["comparable"]["method"] is None
    config = json.loads((unit / "config.json").read_text())
    assert config["model"]["base"]["backbone"] == "wrn" and config["model"]["tuning"]["rungs"] == [[1]]
    one_d = grid["out"] / "suite" / "units" / "wrn-asha" / "satellite" / "seed-0" / "evaluate" / "config.json"
    assert json.loads(one_d.read_text())["model"]["base"]["backbone"] == "resnet1d"


@pytest.mark.slow
def test_the_grid_report_has_the_table_profiles_leaderboards_and_html(grid: dict) -> None:
    assert grid["report"].returncode == 0, grid["report"].stderr
    report = grid["out"] / "suite" / "report"
    text = (report / "report.md").read_text()
    table = text.split("## Methods × tasks")[1].split("## Published")[0]
    for method in ("rea", "darts-darts", "gaea-darts", "e2rnas-darts", "wrn", "wrn-asha", "xgboost"):
        assert f"| {method} [" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert len(rows) == 7 and sum(r.count("(1 seed)") for r in rows) == 21
    assert not any("±" in r for r in rows)  # one seed: no ± anywhere in the table
    assert "Dolan" in text and "ρ(1)" in text
    for name in ("profile-published.png", "profile-suite.png", "leaderboard-ninapro.png", "leaderboard-darcyflow.png",
                 "leaderboard-satellite.png", "report.html"):
        assert (report / name).stat().st_size > 1000
    assert "Published rows and this suite's comparable runs" not in text  # nothing is comparable here
    for value in json.loads((grid["out"] / "suite" / "results.json").read_text())["cells"]:
        assert math.isfinite(value["mean"])


def test_ray_units_ask_for_the_suites_threads_and_one_gpu_with_cuda() -> None:
    from nb360.suite.executors import resources

    assert resources({"device": "cpu", "threads": 2}, ("wrn", "ninapro", 0)) == {"num_cpus": 2, "num_gpus": 0}
    assert resources({"device": "cuda", "threads": 4}, ("gaea-darts", "ecg", 1)) == {"num_cpus": 4, "num_gpus": 1}
    assert resources({"device": "cuda:1", "threads": 4}, ("wrn-asha", "ecg", 1)) == {"num_cpus": 0, "num_gpus": 0}


@pytest.mark.slow
def test_a_unit_past_its_timeout_on_ray_is_cancelled_and_recorded(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """--unit-timeout: a Ray unit running too long is cancelled and recorded as failed; the suite does not hang."""
    pytest.importorskip("ray")
    pytest.importorskip("xgboost")
    from nb360.suite import executors
    from task_fixtures import build_ninapro

    build_ninapro(tmp_path / "data" / "ninapro", sizes=(40, 12, 12))
    monkeypatch.setattr(executors, "POLL_S", 0.5)
    spec = SuiteSpec(methods=("xgboost",), tasks=("ninapro",), seeds=(0,), data_root=str(tmp_path / "data"),
                     xgb_rounds=3, executor="ray", unit_timeout=0.01)
    summary = run_suite(spec, tmp_path / "s", progress=False, say=lambda line: None)
    assert summary["failed"] == 1 and "timed out" in summary["failed_units"][0]
    unit = json.loads((tmp_path / "s" / "units" / "xgboost" / "ninapro" / "seed-0" / "unit.json").read_text())
    assert unit["status"] == "failed" and "--unit-timeout" in unit["error"]


def test_an_unreachable_ray_address_is_refused_quickly(tmp_path: Path) -> None:
    """The suite's Ray executor probes a remote address first (nb360.ray_cluster), as the table builder's does."""
    import socket
    import time

    from nb360.suite.executors import run_ray

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(InputError, match="cannot reach the Ray cluster"):
        list(run_ray({}, str(tmp_path), [], 1, False, address=f"127.0.0.1:{port}"))
    assert time.monotonic() - start < 30
