"""NAS-Bench-360's non-NAS baselines: XGBoost against the xgboost package driven directly with NAS-Bench-360's
settings (xgboost/xgboost_360.py), and WRN+ASHA's settings against Ray Tune's ASHAScheduler and the cited tuning files.

Data: the SYNTHETIC NinaPro fixture of tests/task_fixtures.py and a tiny generated Darcy Flow set (SYNTHETIC PDE
solutions). The ASHA tuning itself runs in tests/test_suite.py's grid (one Ray start for both).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nb360.errors import InputError
from nb360.evaluate import EvalSpec, evaluate

xgboost = pytest.importorskip("xgboost")

NB360_COMMON = {"max_depth": 3, "eta": 1, "early_stopping_rounds": 5, "subsample": 0.9,
                "sampling_method": "gradient_based", "tree_method": "hist", "n_jobs": 1}


def test_xgboost_equals_the_package_with_nas_bench_360s_settings_on_ninapro(tmp_path: Path) -> None:
    from task_fixtures import build_ninapro

    raw = build_ninapro(tmp_path / "ninapro", sizes=(60, 20, 16))
    ev = evaluate(EvalSpec(task="ninapro", data_root=str(tmp_path / "ninapro"), backbone="xgboost", seeds=(0, 1),
                           baseline_options={"rounds": 20}), tmp_path / "run", progress=False, command=["test"])

    def features(x: np.ndarray) -> np.ndarray:  # the WRN loaders' (N, 1, 16, 52), flattened (utils.dm_to_numpy)
        return np.transpose(x, (0, 2, 1)).reshape(len(x), -1).astype(np.float32)

    (xtr, ytr), (xva, yva), (xte, yte) = (raw[k] for k in ("train", "val", "test"))
    for seed, result in zip((0, 1), ev.results["per_seed"]):
        model = xgboost.XGBClassifier(objective="multi:softmax", eval_metric="merror", num_class=18, random_state=seed,
                                      n_estimators=20, **NB360_COMMON)
        model.fit(features(xtr), ytr, eval_set=[(features(xtr), ytr), (features(xva), yva)], verbose=False)
        accuracy = 100.0 * float((model.predict(features(xte)) == yte).mean())
        assert result["test"]["error"] == pytest.approx(100.0 - accuracy)
        assert result["fit"]["best_round"] == model.best_iteration
    assert ev.results["model"]["settings"]["n_estimators"] == 20 and ev.results["protocol"]["shortened"]
    assert ev.results["reference"]["comparable"]["method"] is None  # fixture + fewer rounds
    assert (tmp_path / "run" / "seed-0" / "model.json").exists()
    again = evaluate(EvalSpec(task="ninapro", data_root=str(tmp_path / "ninapro"), backbone="xgboost", seeds=(0, 1),
                              baseline_options={"rounds": 20}), tmp_path / "run", progress=False, command=["test"])
    assert again.resumed and again.results["per_seed"] == ev.results["per_seed"]


def test_xgboost_on_darcy_flow_fits_the_raw_solution_and_ignores_the_constant_grid(tmp_path: Path) -> None:
    from scipy.io import loadmat

    from nb360.data.darcy_generator import generate_darcyflow
    from nb360.data.darcyflow import UnitGaussianNormalizer

    gen = generate_darcyflow(tmp_path / "darcyflow", n_train=20, n_test=5, resolution=8, seed=1, progress=False)
    ev = evaluate(EvalSpec(task="darcyflow", data_root=str(tmp_path / "darcyflow"), backbone="xgboost", seeds=(0,),
                           baseline_options={"rounds": 8}), tmp_path / "run", progress=False, command=["test"])
    train, test = loadmat(gen.train), loadmat(gen.test)
    n_train = 18  # the generated split: the last 10% of 20 is val
    coeff, sol = train["coeff"].astype(np.float64), train["sol"].astype(np.float64)
    norm = UnitGaussianNormalizer(coeff[:n_train])  # NAS-Bench-360's Perceiver loader: the coefficient alone
    x = norm.encode(coeff).numpy().reshape(len(coeff), -1)
    xte = norm.encode(test["coeff"].astype(np.float64)).numpy().reshape(len(test["coeff"]), -1)
    model = xgboost.XGBRegressor(random_state=0, n_estimators=8, **NB360_COMMON)
    y = sol.reshape(len(sol), -1)
    model.fit(x[:n_train], y[:n_train], eval_set=[(x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])],
              verbose=False)
    pred, yte = model.predict(xte), test["sol"].reshape(len(xte), -1)
    rel = float(np.mean(np.linalg.norm(pred - yte, axis=1) / np.linalg.norm(yte, axis=1)))  # LpLoss / 100 there
    assert ev.results["per_seed"][0]["test"]["rel_l2"] == pytest.approx(rel, rel=1e-5)
    assert ev.results["data"]["source"] == "generated" and ev.results["reference"]["comparable"]["method"] is None


def test_xgboost_refuses_what_nas_bench_360_did_not_run() -> None:
    with pytest.raises(InputError, match="did not fit on a single V100"):
        evaluate(EvalSpec(task="psicov", data_root="nowhere", backbone="xgboost", seeds=(0,)), "unused",
                 progress=False)
    with pytest.raises(InputError, match="--epochs does not apply to XGBoost"):
        evaluate(EvalSpec(task="ninapro", data_root="nowhere", backbone="xgboost", epochs=3), "unused", progress=False)
    with pytest.raises(InputError, match="baseline options"):
        EvalSpec(task="ninapro", data_root="x", backbone="wrn", baseline_options={"rounds": 3}).validate()


def test_asha_rungs_are_ray_tunes_own() -> None:
    """nb360's rung list equals the milestones Ray Tune's ASHAScheduler computes for the same settings."""
    pytest.importorskip("ray.tune")
    from ray.tune.schedulers import ASHAScheduler

    from nb360.evaluate.asha import rungs

    assert rungs(200) == [[1, 4, 16, 64, 200]] and rungs(4) == [[1, 4]]
    for max_t, brackets in ((200, 1), (200, 2), (50, 1), (4, 1)):
        ours = rungs(max_t, brackets)
        scheduler = ASHAScheduler(time_attr="epoch", metric="v", mode="min", max_t=max_t, grace_period=ours[0][0],
                                  reduction_factor=4, brackets=brackets)
        theirs = [sorted(m for m, _ in bracket._rungs) for bracket in scheduler._brackets]
        # Ray lists max_t as a rung when it is grace · rf^k; nb360 always ends the list with it
        assert [[m for m in r if m < max_t] for r in ours] == [[m for m in r if m < max_t] for r in theirs]
        assert all(r[-1] == max_t for r in ours)


def test_asha_settings_are_the_cited_tuning_files() -> None:
    from nb360.evaluate.asha import SETTINGS, trial_fields, tuning_description

    # values as read from rtu715/NAS-Bench-360 (file @ commit in each entry's source)
    nina = SETTINGS["ninapro"]
    assert "ninapro_tuning.yaml@cbba450" in nina.source and (nina.max_trials, nina.mode, nina.batch_size) == (
        28, "aggressive", 128)
    assert nina.lr_log10 == (-4.0, -1.0) and nina.momentum == (0.0, 0.3, 0.6, 0.9) and nina.wd_log10 == (-5.0, -2.0)
    assert nina.dropout == (0.0, 0.3, 0.6)
    assert (SETTINGS["deepsea"].max_trials, SETTINGS["ecg"].max_trials, SETTINGS["darcyflow"].max_trials) == (256, 56,
                                                                                                            104)
    assert SETTINGS["psicov"].momentum == (0.0, 0.9) and SETTINGS["psicov"].lr_log10 == (-4.0, 0.0)
    from nb360.tasks import list_tasks

    assert set(SETTINGS) == {card.name for card in list_tasks("nb360")}  # NAS-Bench-360 tuned its ten tasks
    d = tuning_description("ninapro", 200, {})
    assert d["trials"] == d["card_trials"] == 28 and d["brackets"] == 1 and d["rungs"] == [[1, 4, 16, 64, 200]]
    assert d["space"]["lr"] == {"log_uniform": [1e-4, 1e-1]} and d["deviations"]
    base = {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "batch_size": 4096}
    f = trial_fields(base, {"lr": 0.01, "momentum": 0.0, "weight_decay": 1e-3, "dropout": 0.3})
    assert (f["lr"], f["momentum"], f["weight_decay"], f["nesterov"], f["batch_size"]) == (0.01, 0.0, 1e-3, False, 4096)
    with pytest.raises(InputError, match="unknown wrn-asha option"):
        tuning_description("ninapro", 200, {"rounds": 3})
