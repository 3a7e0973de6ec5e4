"""`nb360 run`, the main job, end to end on a tiny generated Darcy Flow set (SYNTHETIC PDE data) and a tiny built table."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nb360.build import BuildSpec, build_table
from nb360.errors import DataError, InputError
from nb360.main_job import MainJobConfig, run_main_job
from nb360.table.embedded import EMBEDDED_DATA, embedded_table_path

TINY_DATA = {"n_train": 40, "n_test": 10, "resolution": 8, "seed": 0}


@pytest.fixture(scope="module")
def tiny_job(tmp_path_factory):
    from nb360.data.darcy_generator import generate_darcyflow

    tmp = tmp_path_factory.mktemp("main")
    data = tmp / "data"
    generate_darcyflow(data, n_train=40, n_test=10, resolution=8, seed=0, workers=1, progress=False)
    spec = BuildSpec(task="darcyflow", data_root=str(data), epochs=2, archs="0-11", channels=2, cells=1,
                     batch_size=8, lr=0.05, latency_repeats=2, seeds=(777, 888))  # two seeds: seed means differ
    table = build_table(spec, tmp / "tiny.h5", shard_size=6, progress=False)
    cfg = MainJobConfig(out=str(tmp / "run"), data_root=str(tmp / "run-data"), table=str(table), repeats=4,
                        search_epochs=1, search_channels=2, search_cells=1, eval_epochs=1, eval_channels=2,
                        eval_cells=1, data=dict(TINY_DATA))
    messages: list[str] = []
    report = run_main_job(cfg, say=messages.append)
    return cfg, report, messages


def test_every_step_runs_and_the_report_says_what_was_done(tiny_job) -> None:
    cfg, report, messages = tiny_job
    assert [m[:5] for m in messages] == ["[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"]
    text = report.read_text()
    for section in ("## 1. Data", "## 2. Tabular search", "## 3. E2RNAS", "## 4. Retraining"):
        assert section in text
    summary = json.loads((report.parent / "summary.json").read_text())
    # the job regenerated the very files the table was built on
    assert summary["data_matches_table"] == {"same_generator_settings": True, "identical_files": True,
                                             "identical_data": True}
    assert set(summary["evaluate"]) == {"tabular-rea", "e2rnas", "wrn-baseline"}
    assert 0 <= summary["tabular"]["found_arch"] <= 11
    for model in summary["evaluate"].values():
        assert model["reported"]["mean"] > 0
    assert (report.parent / "evaluation-report" / "report.md").exists()
    # one seed prints no ±; the generated-data runs are ranked and drawn apart from the published rows (issue 17)
    retraining = text.split("## 4. Retraining")[1]
    rows = [line for line in retraining.splitlines() if line.startswith("| ") and "model" not in line]
    assert len(rows) == 3 and all("±" not in r and r.endswith("| 1 |") for r in rows)
    evaluation = (report.parent / "evaluation-report" / "report.md").read_text()
    runs = [line for line in evaluation.split("## Leaderboard")[1].split("\n## ")[0].splitlines() if "nb360 run" in line]
    assert len(runs) == 3 and all("NOT comparable (generated data)" in r and "±" not in r for r in runs)
    assert (report.parent / "evaluation-report" / "report.html").exists()
    assert (report.parent / "tabular" / "rea" / "plots").is_dir()


def test_rerun_resumes_instead_of_redoing(tiny_job) -> None:
    cfg, report, _ = tiny_job
    messages: list[str] = []
    run_main_job(cfg, say=messages.append)
    assert messages[0].startswith("[1/5] data: reusing")


def test_rerun_with_other_options_is_refused_not_mixed(tiny_job) -> None:
    import dataclasses

    from nb360.errors import InputError

    cfg, _, _ = tiny_job
    with pytest.raises(InputError, match=r"other options \(repeats 4 -> 5\).*new --out"):
        run_main_job(dataclasses.replace(cfg, repeats=5), say=lambda m: None)


def test_missing_table_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DataError, match="not found: pass --table"):
        run_main_job(MainJobConfig(out=str(tmp_path), table=str(tmp_path / "none.h5")), say=lambda m: None)


def test_embedded_table_is_shipped_and_matches_its_data_settings() -> None:
    from nb360.table import Table

    path = embedded_table_path()
    assert path.exists(), f"{path} is missing: see nb360/resources/README.md for how it is built"
    t = Table.open(path)
    hps = sorted({r.hp for r in t.runs}, key=int)
    assert len(hps) >= 2, "the embedded table has two fidelities at least"
    for run in t.runs:
        assert run.time_kind == "measured" and run.row_sharing == "isomorphism"
        source = run.protocol["data"]["source"]  # the generator's provenance record of the training data
        assert (source["seed"], source["n"]["train"], source["n"]["test"], source["resolution"]) == \
            (EMBEDDED_DATA["seed"], EMBEDDED_DATA["n_train"], EMBEDDED_DATA["n_test"], EMBEDDED_DATA["resolution"])
    archs = t.archs()
    for hp in hps:  # at least 3 seeds per distinct cell and fidelity, none missing
        assert len(t.seeds(hp)) >= 3
        for seed in t.seeds(hp):
            assert np.isfinite(t.query_batch(archs, "ori-test-rel_l2", -1, hp=hp, seed=seed)).all()


def test_cli_help_explains_the_main_job() -> None:
    out = subprocess.run([sys.executable, "-m", "nb360", "run", "--help"], capture_output=True, text=True).stdout
    assert "main job" in out and "--eval-epochs" in out


def _records(file_sha: str, body_sha: str | None) -> dict:
    files = {"d_train.mat": {"sha256": file_sha, **({"body_sha256": body_sha} if body_sha else {})}}
    source = {"generator": "g", "seed": 0, "n": {"train": 3}, "resolution": 8, "pipeline": "direct", "files": files}
    return {"source": source, "files": {"d_train.mat": {"sha256": file_sha}}}


@pytest.mark.parametrize(("table_body", "expected"), [("b1", True), ("b2", False), (None, None)])
def test_compare_data_tells_a_header_only_difference_from_different_data(table_body, expected) -> None:
    from nb360.main_job import compare_data

    match = compare_data(_records("old-header", table_body), _records("new-header", "b1"))
    assert match == {"same_generator_settings": True, "identical_files": False, "identical_data": expected}


def test_mat_body_hash_ignores_the_header_text_only(tmp_path) -> None:
    from nb360.data.darcy_generator import MAT_TEXT_BYTES, generate_darcyflow, mat_body_sha256

    gen = generate_darcyflow(tmp_path, n_train=4, n_test=2, resolution=8, seed=1, workers=1, progress=False)
    body = mat_body_sha256(gen.train)
    assert gen.record["files"][gen.train.name]["body_sha256"] == body
    raw = bytearray(gen.train.read_bytes())
    raw[:MAT_TEXT_BYTES] = b"MATLAB 5.0 MAT-file Platform: posix, Created on: another day".ljust(MAT_TEXT_BYTES)
    gen.train.write_bytes(bytes(raw))
    assert mat_body_sha256(gen.train) == body
    raw[-1] ^= 1  # one bit of data
    gen.train.write_bytes(bytes(raw))
    assert mat_body_sha256(gen.train) != body


def test_regenerated_embedded_data_is_the_data_the_embedded_table_was_trained_on(tmp_path) -> None:
    """The generator is deterministic across machines and versions: a change of numpy/scipy that moved
    the generated values would make `nb360 run` retrain on other data than the table's, and fails here."""
    from nb360.data.darcy_generator import generate_darcyflow, mat_body_sha256
    from nb360.table.embedded import EMBEDDED_DATA_BODY_SHA256

    d = EMBEDDED_DATA
    gen = generate_darcyflow(tmp_path, n_train=d["n_train"], n_test=d["n_test"], resolution=d["resolution"],
                             seed=d["seed"], progress=False)
    assert {p.name: mat_body_sha256(p) for p in (gen.train, gen.test)} == EMBEDDED_DATA_BODY_SHA256


@pytest.mark.parametrize("change,message", [
    ({"device": "gpu"}, "unknown device 'gpu'"),
    ({"objectives": ("acc", "foo")}, "objectives must be distinct names"),
    ({"budget": -3.0}, "--budget .* must be positive"),
    ({"search_channels": 0}, "--search-channels"),
    ({"eval_seeds": ()}, "--eval-seeds"),
])
def test_bad_options_are_refused_before_anything_runs_or_is_written(tmp_path, change, message) -> None:
    """A typo must not leave a run directory whose saved options then block the corrected command."""
    out = tmp_path / "job"
    with pytest.raises(InputError, match=message):
        run_main_job(MainJobConfig(out=str(out), **change), say=lambda m: pytest.fail(f"a step ran: {m}"))
    assert not out.exists()


def test_cli_refuses_an_unknown_device_at_parse_time(tmp_path) -> None:
    from nb360.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--out", str(tmp_path / "job"), "--device", "gpu"])
    assert exit_info.value.code == 2 and not (tmp_path / "job").exists()


def test_compare_finals_says_plainly_whether_methods_differ() -> None:
    from nb360.main_job import compare_finals

    rng = np.random.default_rng(0)
    same = compare_finals(rng.normal(0.9, 0.01, 100), rng.normal(0.9, 0.01, 100), "max")
    assert same["verdict"] == "no real difference" and same["p_value"] > 0.05
    better = compare_finals(rng.normal(0.92, 0.01, 100), rng.normal(0.90, 0.01, 100), "max")
    assert better["verdict"] == "REA better" and better["difference"] == pytest.approx(0.02, abs=0.005)
    lower_is_better = compare_finals(rng.normal(0.08, 0.01, 100), rng.normal(0.10, 0.01, 100), "min")
    assert lower_is_better["verdict"] == "REA better"
    assert compare_finals(np.array([0.9]), np.array([0.8]), "max")["verdict"] == "no real difference"  # one repeat
    import warnings

    from scipy import stats

    for x, y in ((rng.normal(0.9, 0.01, 30), rng.normal(0.905, 0.02, 45)), (np.full(30, 0.9), rng.normal(0.9, 0.01, 8))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = stats.ttest_ind(x, y, equal_var=False).pvalue  # the oracle (warns on the constant x)
        assert compare_finals(x, y, "max")["p_value"] == pytest.approx(reference, rel=1e-6)
    # every repeat on one value (a small table): decided without a t-test on rounding noise
    tie = compare_finals(np.full(50, 0.9164), np.full(40, 0.9164), "max")
    assert tie["verdict"] == "no real difference" and tie["difference"] == 0 and tie["p_value"] == 1.0
    apart = compare_finals(np.full(50, 0.9164), np.full(40, 0.9168), "max")
    assert apart["verdict"] == "random search better" and apart["difference"] == pytest.approx(-0.0004)


def test_report_says_when_a_sparse_table_makes_rea_close_to_random_search(tiny_job) -> None:
    from nb360.main_job.tabular import comparison_text
    from nb360.search.tabular import TabularProblem
    from nb360.table import Table

    cfg, report, _ = tiny_job
    summary = json.loads((report.parent / "summary.json").read_text())
    problem = TabularProblem.from_table(Table.open(cfg.table))
    n = problem.num_neighbours[problem.recorded]  # counted here independently of the job
    assert summary["tabular"]["neighbours"] == pytest.approx({"mean": n.mean(), "none": (n == 0).mean()})
    base = {"search_metric": "x-valid-accuracy", "search_hp": "4", "final_hp": "4", "seeds": [0],
            "archs_recorded": 160}
    sparse = comparison_text({**base, "neighbours": {"mean": 0.41, "none": 0.64}})
    assert "0.41 recorded one-edge neighbours of 24 (64% have none)" in sparse and "by construction" in sparse
    assert "sparse" not in comparison_text({**base, "neighbours": {"mean": 24.0, "none": 0.0}})  # a full table


def test_the_main_job_compares_methods_on_seed_means(tiny_job) -> None:
    from nb360.search.tabular import TabularProblem
    from nb360.table import Table

    cfg, report, _ = tiny_job
    problem = TabularProblem.from_table(Table.open(cfg.table))
    summary = json.loads((report.parent / "summary.json").read_text())
    assert summary["tabular"]["protocol"] == "nb360-seed-mean"
    for method in ("rea", "rs"):
        out = report.parent / "tabular" / method
        repeats = json.loads((out / "genotype.json").read_text())["per_repeat"]
        # each repeat's final metric is its arch's mean over the seeds, not one seed drawn (nb360's is_random=True)
        assert [r["final"] for r in repeats] == pytest.approx([problem.final_values[r["arch"]] for r in repeats])
        assert json.loads((out / "config.json").read_text())["protocol"] == "nb360-seed-mean"
        found = np.array([r["arch"] for r in repeats])
        table = Table.open(cfg.table)
        seeds = np.array([table.query_batch(found, problem.final_metric, -1, seed=s) for s in (777, 888)])
        assert (seeds[0] != seeds[1]).all()  # so any one seed drawn would differ from the mean
    assert "mean over the table's seeds (NATS's `is_random=False`)" in report.read_text()
