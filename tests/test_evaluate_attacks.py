"""`nb360 evaluate --attacks`: retrain, then attack the test set (E2RNAS's protocol and a strong PGD), resumably.

Data are SYNTHETIC released-layout fixtures (tests/task_fixtures.py: CIFAR-10, Satellite, DeepSEA) and a
tiny generated Darcy Flow set; networks are tiny and train one epoch, so the figures test the plumbing and
the threat model, not robustness itself.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import task_fixtures as fx  # noqa: E402

from nb360.errors import InputError  # noqa: E402
from nb360.evaluate import EvalSpec, evaluate  # noqa: E402

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
QUICK = {"pgd-strong.steps": 3, "pgd-strong.restarts": 2}


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> subprocess.CompletedProcess:
    """The nb360 command line, in this process (no interpreter start-up per call)."""
    from nb360.cli import main

    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(["nb360", *args], code, out.out, out.err)


@pytest.fixture(scope="module")
def cifar10_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "cifar10"
    fx.build_cifar10(root, per_batch=6, n_test=12)
    return root


def cifar_spec(root: Path, **changes) -> EvalSpec:
    values = dict(task="cifar10", data_root=str(root), genotype="E2RNAS_V1_cifar10", seeds=(0, 1), epochs=1,
                  channels=4, layers=2, attack_overrides=dict(QUICK))
    values.update(changes)
    return EvalSpec(**values)


@pytest.fixture(scope="module")
def attacked_run(cifar10_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "attacked"
    evaluate(cifar_spec(cifar10_root), out, progress=False, command=["test"])
    return out


# ----------------------------------------------------------------------------- classification: the E2RNAS suite
def test_the_e2rnas_suite_is_attacked_by_default_with_the_authors_protocol(attacked_run: Path) -> None:
    results = json.loads((attacked_run / "results.json").read_text())
    assert results["protocol"]["name"] == "darts"  # E2RNAS's retraining protocol (DARTS/train.py) by default
    r = results["robustness"]
    assert list(r["summary"]) == ["clean", "fgsm", "pgd", "pgd-strong"]
    t = r["threat"]
    assert (t["unit"], t["eps_text"], t["card_default"]) == ("pixel", "2/255", True)
    from nb360.data.cifar10 import STD
    for (lo, hi), std in zip(t["eps_model_units_per_channel"], STD):  # ε / std per channel
        assert lo == hi == pytest.approx(2 / 255 / std, rel=1e-5)
    assert r["attacks"]["pgd"] == {"name": "pgd", "steps": 10, "step": 0.25, "random_start": False, "restarts": 1,
                                   "description": r["attacks"]["pgd"]["description"]}
    assert r["attacks"]["pgd-strong"]["restarts"] == 2 and "changed from the default" in \
        r["attacks"]["pgd-strong"]["description"]
    for row, seed_result in zip(r["per_seed"], results["per_seed"]):
        assert row["clean"]["error"] == pytest.approx(seed_result["test"]["error"])  # same network, same metric
        for name in ("fgsm", "pgd", "pgd-strong"):
            assert 0 <= row[name]["error"] <= 100 and row[name]["accuracy"] == pytest.approx(100 - row[name]["error"])
    assert r["summary"]["pgd"]["reported"]["n"] == 2 and r["reference"]["comparable"] is False
    assert "protocol was changed" in r["reference"]["note_on_this_run"]


def test_cli_writes_clean_fgsm_and_pgd_next_to_the_papers_row(cifar10_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    proc = run_cli(capsys, "evaluate", "--task", "cifar10", "--genotype", "E2RNAS_V1_cifar10", "--attacks", "fgsm,pgd",
                   "--data-root", str(cifar10_root), "--seeds", "0", "--epochs", "1", "--channels", "4", "--layers",
                   "2", "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for needle in ("robustness on the test set", "eps = 2/255 in pixel units", "clean", "fgsm", "pgd",
                   "E2RNAS / paper", "arXiv 2011.09820", "NOT comparable"):
        assert needle in text, needle
    results = json.loads((out / "results.json").read_text())
    assert list(results["robustness"]["summary"]) == ["clean", "fgsm", "pgd"]
    report = run_cli(capsys, "report", str(out), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Robustness" in md and "pgd" in md and "NOT comparable" in md and "robustness-1-cli.png" in md
    assert (tmp_path / "report" / "robustness-1-cli.png").exists()


def test_an_interrupted_attacked_evaluation_resumes_to_identical_results(attacked_run: Path, cifar10_root: Path,
                                                                          tmp_path: Path, monkeypatch) -> None:
    import nb360.evaluate.attacks as attacks

    real, calls = attacks.attack_figures, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # seed 1's second figure: seed 0 finished, seed 1 half attacked
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    out = tmp_path / "resumed"
    monkeypatch.setattr(attacks, "attack_figures", flaky)
    with pytest.raises(KeyboardInterrupt):
        evaluate(cifar_spec(cifar10_root), out, progress=False, command=["test"])
    assert not (out / "results.json").exists() and len(list((out / "seed-0" / "attacks").glob("*.json"))) == 4
    monkeypatch.setattr(attacks, "attack_figures", real)
    resumed = evaluate(cifar_spec(cifar10_root), out, progress=False, command=["test"])
    assert resumed.resumed
    assert (out / "results.json").read_bytes() == (attacked_run / "results.json").read_bytes()


def test_attacks_added_to_a_finished_run_reuse_its_networks(attacked_run: Path, cifar10_root: Path,
                                                             tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(attacked_run, out)
    log = (out / "seed-0" / "log.jsonl").read_text()
    again = evaluate(cifar_spec(cifar10_root, eps=1 / 255, attacks=("fgsm",), attack_overrides={}), out, progress=False)
    assert (out / "seed-0" / "log.jsonl").read_text() == log  # nothing retrained
    r = again.results["robustness"]
    assert list(r["summary"]) == ["clean", "fgsm"] and r["threat"]["card_default"] is False
    assert "eps is 0.00392157 in pixel units, not the card's" in r["reference"]["note_on_this_run"]


# ----------------------------------------------------------------------------- a dense and a 1D task
def test_dense_darcy_is_attacked_in_permeability_units_on_the_coefficient_only(tmp_path: Path) -> None:
    from nb360.data.darcy_generator import generate_darcyflow

    generate_darcyflow(tmp_path / "darcy", n_train=16, n_test=4, resolution=8, workers=1, progress=False)
    run = evaluate(EvalSpec(task="darcyflow", data_root=str(tmp_path / "darcy"), arch=ARCH, channels=2, cells=1,
                            seeds=(0,), epochs=1, attacks=("fgsm", "pgd")), tmp_path / "run", progress=False)
    r = run.results["robustness"]
    coeff, gx, gy = r["threat"]["eps_model_units_per_channel"]
    assert r["threat"]["unit"] == "raw" and gx == gy == [0.0, 0.0] and 0 < coeff[0] <= coeff[1]
    clean = r["per_seed"][0]["clean"]["rel_l2"]
    assert clean == pytest.approx(run.results["per_seed"][0]["test"]["rel_l2"])
    assert r["per_seed"][0]["pgd"]["rel_l2"] >= r["per_seed"][0]["fgsm"]["rel_l2"] * 0.999 >= clean * 0.999
    assert r["reference"] is None  # no published robust results for Darcy Flow


def test_a_1d_task_is_attacked_in_z_score_units(tmp_path: Path) -> None:
    fx.build_satellite(tmp_path / "sat", n_train=40, n_test=12)
    run = evaluate(EvalSpec(task="satellite", data_root=str(tmp_path / "sat"), backbone="resnet1d", seeds=(0,),
                            epochs=1, attacks=("pgd", "pgd-strong"), attack_overrides=dict(QUICK)),
                   tmp_path / "run", progress=False)
    r = run.results["robustness"]
    assert r["threat"]["unit"] == "model" and r["threat"]["eps_model_units_per_channel"] == [[0.05, 0.05]]
    s = r["summary"]
    assert s["pgd-strong"]["accuracy"]["mean"] <= s["clean"]["accuracy"]["mean"]
    assert r["overstatement"]["reported_difference"] == pytest.approx(
        s["pgd-strong"]["reported"]["mean"] - s["pgd"]["reported"]["mean"])


# ----------------------------------------------------------------------------- refusals
def test_deepsea_is_refused_with_its_reason_before_training(tmp_path: Path) -> None:
    fx.build_deepsea(tmp_path / "deepsea")
    out = tmp_path / "run"
    with pytest.raises(InputError, match="deepsea is not attacked: the input is one-hot DNA.*substitutions"):
        evaluate(EvalSpec(task="deepsea", data_root=str(tmp_path / "deepsea"), backbone="resnet1d", seeds=(0,),
                          epochs=1, attacks=("fgsm",)), out, progress=False)
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--attacks", "cw"], "--attacks takes distinct names from fgsm, pgd, pgd-strong"),
    (["--attacks", "none", "--eps", "0.1"], "need attacks to run"),
    (["--attack-setting", "pgd.steps"], "ATTACK.KEY=VALUE"),
    (["--attack-setting", "pgd.steps=0"], "steps and restarts must be >= 1"),
    (["--eps-unit", "raw"], "x_normalizer"),
])
def test_cli_attack_errors_are_one_line_with_exit_status_2(args: list[str], message: str, cifar10_root: Path,
                                                          tmp_path: Path, capsys) -> None:
    proc = run_cli(capsys, "evaluate", "--task", "cifar10", "--genotype", "E2RNAS_V1_cifar10", "--data-root",
                   str(cifar10_root), "--epochs", "1", "--channels", "4", "--layers", "2", "--out",
                   str(tmp_path / "x"), "--no-progress", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


ATTACKABLE = {"cifar100": fx.build_cifar100, "spherical": fx.build_spherical, "ninapro": fx.build_ninapro,
              "fsd50k": fx.build_fsd50k, "psicov": fx.build_psicov, "cosmic": fx.build_cosmic, "ecg": fx.build_ecg,
              "satellite": fx.build_satellite, "cifar10": fx.build_cifar10, "svhn": fx.build_svhn}


@pytest.mark.parametrize("name", list(ATTACKABLE))
def test_every_attackable_task_is_attacked_within_its_threat_model(name: str, tmp_path: Path) -> None:
    """The card's threat model on each task's fixture test items: the perturbation stays in the ball (zero on inputs
    the card does not perturb) and the robust figure is the task's own metric."""
    from nb360.data import load
    from nb360.evaluate.attacks import ATTACKS, TaskAttack, _Prefix, attack_figures
    from nb360.threats import build_threat
    from nb360.models import build
    from nb360.robust import fgsm
    from nb360.tasks import get_task
    from nb360.training.loop import make_loader

    ATTACKABLE[name](tmp_path, **({"n_deepcov": 4, "n_psicov": 1} if name == "psicov" else {}))
    card, cpu = get_task(name), torch.device("cpu")
    data = load(name, tmp_path, "retrain")
    threat, description = build_threat(card, data["train"])
    torch.manual_seed(0)
    net = build(card, arch=ARCH, C=2, N=1).eval()
    task = TaskAttack(card, data["test"], cpu)
    loader = _Prefix(make_loader(data["test"], card.protocol().eval_batch_size or 1, shuffle=False), 3)
    batch = next(iter(loader))
    mask = task.region(batch)
    bound = threat.scale(batch[0], threat.eps) * (1 if mask is None else mask)
    adv = fgsm(lambda x: task.forward(net, x), batch[0], batch[1], threat if mask is None else threat.restricted(mask),
               loss_fn=lambda out, _y: task.loss(out, batch))
    delta = (adv - batch[0]).abs()
    assert (delta <= bound + 1e-6 * (1 + batch[0].abs())).all() and delta.max() > 0  # float32 rounding
    channels = card.robustness.get("channels")
    if channels is not None:  # e.g. PSICOV's profile channels stay untouched
        others = [c for c in range(card.in_channels) if c not in channels]
        assert delta[:, others].max() == 0 if batch[0].dim() == 4 else True
    if name != "psicov":  # the fixture's random distances leave MAE8 undefined
        figures = attack_figures(net, task, loader, threat, ATTACKS["fgsm"], 0, cpu)
        assert card.metric.name in figures and "reported" in figures


def test_a_search_refuses_an_adversarial_objective_on_deepsea_but_still_searches_without_it(tmp_path: Path) -> None:
    from nb360.search.supernet import SupernetSearch, default_config

    fx.build_deepsea(tmp_path / "deepsea")
    small = dict(data_root=str(tmp_path / "deepsea"), C=2, N=1, epochs=1, batch_size=2)
    with pytest.raises(InputError, match="deepsea is not attacked: the input is one-hot DNA"):
        SupernetSearch(default_config("e2rnas", "deepsea", objectives=("acc", "adv"), **small), tmp_path / "a",
                       progress=False)
    engine = SupernetSearch(default_config("darts", "deepsea", **small), tmp_path / "b", progress=False)
    assert engine.threat is None  # the found architecture is scored clean only, with the card's reason


def test_genotypes_on_the_e2rnas_suite_retrain_with_the_authors_protocol_only(cifar10_root: Path) -> None:
    from nb360.evaluate import darts_protocol, model_description
    from nb360.tasks import get_task

    card = get_task("cifar10")
    fields, protocol = darts_protocol(card, None)
    assert (protocol["name"], fields["epochs"], fields["batch_size"]) == ("darts", 600, 96)  # DARTS/train.py
    assert model_description(card, cifar_spec(cifar10_root, layers=None, channels=None))["C"] == 36
    with pytest.raises(InputError, match="use --protocol darts"):
        darts_protocol(card, "nb360")
