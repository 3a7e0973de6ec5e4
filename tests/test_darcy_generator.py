"""The Darcy Flow generator: analytic check, orientation, determinism, file layout, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.io import loadmat

from nb360.data import darcy_generator as gen
from nb360.errors import DataError, InputError

# max u of -Laplace(u) = 1 on the unit square with u = 0 on the boundary (series solution: 0.0736713...)
ANALYTIC_MAX = 0.07367


@pytest.mark.parametrize("value", [1.0, 12.0])
def test_constant_coefficient_reproduces_the_analytic_maximum(value: float) -> None:
    for k in (85, 211):
        u = gen.solve_cell_centred(np.full((k, k), value))
        assert u.max() * value == pytest.approx(ANALYTIC_MAX, rel=1e-3)
    u = gen.solve_on_nodes(np.full((85, 85), value))
    assert u.max() * value == pytest.approx(ANALYTIC_MAX, rel=1e-3)
    assert np.all(u[0] == 0) and np.all(u[:, -1] == 0)


def test_solution_has_the_coefficient_orientation() -> None:
    k = 85
    a = np.full((k, k), gen.LOW)
    a[:, : k // 2] = gen.HIGH  # stiffer (higher a) columns on the left -> smaller u there
    u = gen.solve_cell_centred(a)
    assert u[:, : k // 2].mean() < 0.7 * u[:, k // 2 + 1:].mean()
    d = gen.solve_direct(np.repeat(np.repeat(a, 5, 0), 5, 1)[:421, :421], 85)
    assert d[:, : k // 2].mean() < 0.7 * d[:, k // 2 + 1:].mean()


def test_sample_is_two_phase_and_of_the_expected_size() -> None:
    coeff, sol = gen.generate_sample(gen.sample_rng(3, "train", 0), resolution=43)
    assert coeff.shape == sol.shape == (43, 43)
    assert set(np.unique(coeff)) <= {4.0, 12.0} and len(np.unique(coeff)) == 2
    # same order of magnitude as FNO's data (max u about 0.009-0.012 on random samples)
    assert 0.003 < sol.max() < 0.03


def test_generate_writes_the_released_layout_and_provenance(tmp_path) -> None:
    out = gen.generate_darcyflow(tmp_path, n_train=5, n_test=3, resolution=43, seed=7, workers=1, progress=False)
    train, test = loadmat(out.train), loadmat(out.test)
    assert train["coeff"].shape == train["sol"].shape == (5, 43, 43)
    assert test["coeff"].shape == test["sol"].shape == (3, 43, 43)
    assert train["coeff"].dtype == train["sol"].dtype == np.float64
    record = json.loads((tmp_path / gen.PROVENANCE_FILE).read_text())
    assert record["generated"] is True and "NOT the released" in record["note"]
    assert record["seed"] == 7 and record["n"] == {"train": 5, "test": 3} and record["resolution"] == 43
    assert set(record["files"]) == {gen.TRAIN_FILE, gen.TEST_FILE}
    assert gen.verify_generated(tmp_path)["seed"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([gen.TRAIN_FILE, gen.TEST_FILE, gen.PROVENANCE_FILE])


def test_deterministic_per_seed_whatever_the_worker_count(tmp_path) -> None:
    a = gen.generate_darcyflow(tmp_path / "a", n_train=4, n_test=2, resolution=29, seed=11, workers=1, progress=False)
    b = gen.generate_darcyflow(tmp_path / "b", n_train=4, n_test=2, resolution=29, seed=11, workers=2, progress=False)
    c = gen.generate_darcyflow(tmp_path / "c", n_train=4, n_test=2, resolution=29, seed=12, workers=1, progress=False)
    for name in (gen.TRAIN_FILE, gen.TEST_FILE):
        ma, mb, mc = (loadmat(r.train.parent / name) for r in (a, b, c))
        for key in ("coeff", "sol"):
            assert np.array_equal(ma[key], mb[key])
        assert not np.array_equal(ma["sol"], mc["sol"])
    # train and test draw from different streams
    assert not np.array_equal(loadmat(a.train)["coeff"][0], loadmat(a.test)["coeff"][0])


def test_interrupted_run_leaves_no_complete_looking_files(tmp_path, monkeypatch) -> None:
    gen.generate_darcyflow(tmp_path, n_train=2, n_test=1, resolution=29, workers=1, progress=False)
    calls = {"n": 0}
    real = gen._work

    def failing(job):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(gen, "_work", failing)
    with pytest.raises(KeyboardInterrupt):
        gen.generate_darcyflow(tmp_path, n_train=4, n_test=1, resolution=29, workers=1, progress=False)
    assert not (tmp_path / gen.PROVENANCE_FILE).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind
    with pytest.raises(DataError, match="missing"):
        gen.verify_generated(tmp_path)


def test_verify_detects_a_changed_file(tmp_path) -> None:
    out = gen.generate_darcyflow(tmp_path, n_train=2, n_test=1, resolution=29, workers=1, progress=False)
    data = bytearray(out.test.read_bytes())
    data[-1] ^= 0xFF
    out.test.write_bytes(bytes(data))
    with pytest.raises(DataError, match="does not match its provenance"):
        gen.verify_generated(tmp_path)


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="not a subsampling of the 421 grid.*85"):
        gen.check_resolution(100)
    with pytest.raises(InputError, match="at least one"):
        gen.generate_darcyflow("/nonexistent-unused", n_train=0)
    with pytest.raises(InputError, match="pipeline"):
        gen.generate_sample(np.random.default_rng(0), 29, "bogus")  # type: ignore[arg-type]


@pytest.mark.slow
def test_direct_85_agrees_with_the_421_pipeline() -> None:
    errors = []
    for i in range(3):
        coeff_d, sol_d = gen.generate_sample(gen.sample_rng(0, "test", i), 85, "direct")
        coeff_f, sol_f = gen.generate_sample(gen.sample_rng(0, "test", i), 85, "full")
        assert np.array_equal(coeff_d, coeff_f)
        errors.append(np.linalg.norm(sol_d - sol_f) / np.linalg.norm(sol_f))
    assert max(errors) < 0.005, errors


def test_cli_generate_and_verify(tmp_path, capsys) -> None:
    from nb360.cli import main

    assert main(["data", "generate", "darcyflow", "--root", str(tmp_path), "--n", "3", "--n-test", "2",
                 "--resolution", "29", "--seed", "4", "--workers", "1", "--no-progress"]) == 0
    assert str(tmp_path / gen.TRAIN_FILE) in capsys.readouterr().out
    assert loadmat(tmp_path / gen.TRAIN_FILE)["sol"].shape == (3, 29, 29)
    # released files absent, but the verified generated set stands in for them
    assert main(["data", "verify", "darcyflow", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "missing   piececonst_r421_N1024_smooth1.mat" in out and "generated set" in out
    assert main(["data", "generate", "darcyflow", "--root", str(tmp_path), "--resolution", "100"]) == 2
    assert "not a subsampling" in capsys.readouterr().err


def test_cli_generate_help_states_the_cost() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "nb360", "data", "generate", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "1000 + 100" in proc.stdout and "--pipeline" in proc.stdout


def test_same_seed_gives_byte_identical_files(tmp_path) -> None:
    import hashlib
    import time

    from scipy.io import loadmat

    from nb360.data.darcy_generator import generate_darcyflow

    digests = []
    for name in ("a", "b"):
        generate_darcyflow(tmp_path / name, n_train=4, n_test=2, resolution=8, seed=3, workers=1, progress=False)
        digests.append([hashlib.sha256((tmp_path / name / f).read_bytes()).hexdigest()
                        for f in ("darcyflow_generated_train.mat", "darcyflow_generated_test.mat")])
        time.sleep(1.1)  # a creation time in the header would now differ
    assert digests[0] == digests[1]
    assert loadmat(tmp_path / "a" / "darcyflow_generated_train.mat")["coeff"].shape == (4, 8, 8)
