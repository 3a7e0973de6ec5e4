"""`nb360 ablate`: objective subsets x seeds, retrained and attacked, resumable; Pareto front and λ plots.

Data: a tiny GENERATED Darcy Flow set (8x8); supernets and retrained networks are tiny and run one epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from nb360.ablation import AblationConfig, run_ablation  # noqa: E402
from nb360.ablation_report import pareto_front  # noqa: E402
from nb360.errors import InputError  # noqa: E402


def test_pareto_front_minimises_every_coordinate() -> None:
    points = [(1, 5, 3), (2, 2, 2), (1, 5, 4), (3, 3, 3), (0.5, 9, 9)]
    assert pareto_front(points) == [True, True, False, False, True]


@pytest.fixture(scope="module")
def darcy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nb360.data.darcy_generator import generate_darcyflow

    root = tmp_path_factory.mktemp("darcy")
    generate_darcyflow(root, n_train=16, n_test=4, resolution=8, workers=1, progress=False)
    return root


def tiny(root: Path, out: Path, **changes) -> AblationConfig:
    values = dict(task="darcyflow", out=str(out), data_root=str(root), seeds=(0,),
                  subsets=(("acc",), ("acc", "adv", "size")), epochs=1, channels=2, cells=1, batch_size=8,
                  retrain_epochs=1, retrain_channels=2, attacks=("pgd",))
    values.update(changes)
    return AblationConfig(**values)


def test_an_ablation_writes_the_trade_off_and_resumes(darcy_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "abl"
    report = run_ablation(tiny(darcy_root, out), say=lambda _m: None, progress=False)
    summary = json.loads((out / "ablation.json").read_text())
    assert [r["subset"] for r in summary["runs"]] == ["acc", "acc+adv+size"]
    for r in summary["runs"]:
        assert r["figures_from"] == "retrained, test split" and r["attack"] == "pgd"
        assert r["error"] > 0 and r["robust_error"] >= r["error"] * 0.999 and r["params"] > 0
        assert isinstance(r["pareto"], bool)
    multi = summary["runs"][1]
    assert set(multi["lambda"]) == {"acc", "adv", "size"} and len(multi["lambda"]["acc"]) == 2  # 2 steps of 8
    assert all(abs(sum(v) - 1) < 1e-5 for v in zip(*multi["lambda"].values()))  # MGDA weights on the simplex (+1e-7s)
    assert summary["subsets"]["acc"]["error"]["n"] == 1
    assert any(r["pareto"] for r in summary["runs"])
    text = report.read_text()
    assert "SHORTENED" in text and "plots/pareto.png" in text and "plots/lambda.png" in text
    assert (out / "plots" / "pareto.png").exists() and (out / "plots" / "lambda.png").exists()
    # rerunning reads every finished search and evaluation back
    stamp = (out / "search" / "acc" / "seed-0" / "result.json").stat().st_mtime_ns
    run_ablation(tiny(darcy_root, out), say=lambda _m: None, progress=False)
    assert (out / "search" / "acc" / "seed-0" / "result.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "ablation.json").read_text())["runs"][0]["error"] == summary["runs"][0]["error"]
    with pytest.raises(InputError, match="other settings \\(epochs\\)"):
        run_ablation(tiny(darcy_root, out, epochs=2), say=lambda _m: None, progress=False)


def test_bad_ablation_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must contain acc"):
        AblationConfig(subsets=(("adv",),)).validate()
    with pytest.raises(InputError, match="needs --data-root"):
        AblationConfig(task="ninapro").validate()
    with pytest.raises(InputError, match="distinct seeds"):
        AblationConfig(seeds=(0, 0)).validate()
