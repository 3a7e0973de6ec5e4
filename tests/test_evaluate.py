"""`nb360 evaluate`: the card protocol, bit-identical reruns, resume after an interruption, run-directory checks.

Data are the SYNTHETIC released-layout fixtures of tests/task_fixtures.py (NinaPro, Satellite) and a
tiny generated Darcy Flow set; models are tiny (NB201 C=2, N=1) and runs last 2-3 epochs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nb360.errors import DataError, InputError
from nb360.evaluate import (EvalSpec, evaluate, load_checkpoint, model_description, read_log, retrain_protocol,
                            train_config)
from nb360.tasks import get_task

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nb360", *args], capture_output=True, text=True, cwd=cwd)



@pytest.fixture(scope="module")
def ninapro_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SYNTHETIC NinaPro files (released layout): 150 + 50 train/val windows (2 batches of the card's 128), 16 test."""
    from task_fixtures import build_ninapro

    root = tmp_path_factory.mktemp("data") / "ninapro"
    build_ninapro(root, sizes=(150, 50, 16))
    return root


def spec_for(root: Path, **changes) -> EvalSpec:
    values = dict(task="ninapro", data_root=str(root), arch=ARCH, seeds=(0, 1), epochs=3, channels=2, cells=1)
    values.update(changes)
    return EvalSpec(**values)


@pytest.fixture(scope="module")
def reference_run(ninapro_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run: seeds 0 and 1, 3 epochs of 2 batches."""
    out = tmp_path_factory.mktemp("runs") / "reference"
    evaluate(spec_for(ninapro_root), out, progress=False, command=["test"])
    return out


# ----------------------------------------------------------------------------- the card protocol
def test_the_card_protocol_becomes_the_train_config() -> None:
    fields, protocol = retrain_protocol(get_task("ninapro"))
    cfg = train_config(fields, seed=2)
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay) == (
        200, 128, 0.1, 0.9, True, 5e-4)
    assert (cfg.schedule, cfg.milestones, cfg.gamma, cfg.seed) == ("step", (60, 120, 160), 0.2, 2)
    assert not protocol["shortened"] and protocol["milestone_rule"] == "the card's milestones"
    dense_fields, dense = retrain_protocol(get_task("psicov"))
    assert dense_fields["lr"] == 0.001 and dense_fields["batch_size"] == 8 and dense_fields["eval_batch_size"] == 2
    assert any("nesterov" in u for u in dense["uncertain"])


@pytest.mark.parametrize(("epochs", "milestones"), [(10, [3, 7, 9]), (100, [30, 61, 81]), (3, [0, 2, 3])])
def test_shortened_protocols_decay_where_the_original_weight_sched_does(epochs: int, milestones: list[int]) -> None:
    fields, protocol = retrain_protocol(get_task("satellite"), epochs)
    assert fields["milestones"] == milestones and fields["epochs"] == epochs
    assert protocol["shortened"] and protocol["card_epochs"] == 200
    assert "other epoch counts" in protocol["milestone_rule"]

    # the original: lr x 0.2**(e >= int(.3E)) * 0.2**(e > int(.6E)) * 0.2**(e > int(.8E)), stepped per epoch
    def original(e: int) -> float:
        return 0.2 ** (e >= int(0.3 * epochs)) * 0.2 ** (e > int(0.6 * epochs)) * 0.2 ** (e > int(0.8 * epochs))

    ours = [0.2 ** sum(e >= m for m in milestones) for e in range(epochs)]
    assert ours == pytest.approx([original(e) for e in range(epochs)], rel=1e-12)


def test_models_resolve_and_bad_ones_are_refused(ninapro_root: Path) -> None:
    card = get_task("ninapro")
    by_index = model_description(card, spec_for(ninapro_root, arch="1234"))
    assert by_index["index"] == 1234 and by_index["arch"].startswith("|")
    assert model_description(card, spec_for(ninapro_root, arch=None, backbone="default"))["backbone"] == "wrn"
    assert model_description(get_task("darcyflow"), spec_for(ninapro_root, arch=None, backbone="wrn"))["backbone"] \
        == "dense-wrn"
    with pytest.raises(InputError, match="dense-wrn is the WRN for dense tasks"):
        model_description(card, spec_for(ninapro_root, arch=None, backbone="dense-wrn"))
    with pytest.raises(InputError, match="node groups"):
        model_description(card, spec_for(ninapro_root, arch="|conv~0|+|x|"))
    for bad, match in [(dict(arch=None), "exactly one of --arch"), (dict(seeds=(1, 1)), "distinct"),
                       (dict(epochs=0), "--epochs must be in 1..100,000"),
                       (dict(epochs=10**20), "--epochs must be in 1..100,000"), (dict(backbone="wrn"), "exactly one")]:
        with pytest.raises(InputError, match=match):
            spec_for(ninapro_root, **bad).validate()


# ----------------------------------------------------------------------------- runs
def test_a_run_directory_holds_manifest_logs_checkpoints_and_results(reference_run: Path) -> None:
    results = json.loads((reference_run / "results.json").read_text())
    assert results["seeds"] == [0, 1] and [r["seed"] for r in results["per_seed"]] == [0, 1]
    for r in results["per_seed"]:
        assert set(r["test"]) >= {"error", "reported", "loss", "accuracy"} and r["epochs"] == 3
    errors = [r["test"]["error"] for r in results["per_seed"]]
    assert results["summary"]["reported"]["mean"] == pytest.approx(sum(errors) / 2)
    assert results["summary"]["reported"]["std"] == pytest.approx(abs(errors[0] - errors[1]) / 2)
    assert results["protocol"]["shortened"] and results["protocol"]["card_epochs"] == 200
    assert results["reference"]["comparable"]["method"] is None  # shortened: nothing is comparable
    assert "baselines.png" in results["reference"]["source"]
    assert '"time"' not in (reference_run / "results.json").read_text()  # no wall times in the results

    manifest = json.loads((reference_run / "manifest.json").read_text())
    env = manifest["environment"]
    assert manifest["nb360"] and "git_revision" in manifest and manifest["seeds"] == [0, 1]
    assert {"torch", "cuda", "cudnn", "device"} <= set(env)
    assert set(manifest["data"]["files"]) >= {"ninapro_train.npy", "label_test.npy"}
    assert all(len(f["sha256"]) == 64 for f in manifest["data"]["files"].values())
    assert [s["status"] for s in manifest["sessions"]] == ["finished"]
    for seed in (0, 1):
        log = read_log(reference_run / f"seed-{seed}" / "log.jsonl")
        assert [r["epoch"] for r in log] == [0, 1, 2] and all("time" in r["train"] and "test" in r for r in log)
        state = load_checkpoint(reference_run / f"seed-{seed}" / "checkpoints" / "last.pt")
        assert state["epoch"] == 2 and "optimizer" in state and "model" in state


def test_the_same_run_twice_on_the_cpu_writes_identical_results(reference_run: Path, ninapro_root: Path,
                                                                tmp_path: Path) -> None:
    evaluate(spec_for(ninapro_root), tmp_path / "again", progress=False, command=["test"])
    assert (tmp_path / "again" / "results.json").read_bytes() == (reference_run / "results.json").read_bytes()


def test_an_interrupted_run_resumes_to_the_same_result(reference_run: Path, ninapro_root: Path,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "interrupted"

    def stop_at(seed: int, epoch: int) -> None:
        if (seed, epoch) == stop:
            raise KeyboardInterrupt

    stop = (0, 0)  # first session: stop after seed 0's first epoch
    with pytest.raises(KeyboardInterrupt):
        evaluate(spec_for(ninapro_root), out, progress=False, command=["test"], epoch_hook=stop_at)
    assert not (out / "results.json").exists() and (out / "seed-0" / "checkpoints" / "last.pt").exists()
    stop = (1, 1)  # second session: resume seed 0 at epoch 1, stop inside seed 1
    with pytest.raises(KeyboardInterrupt):
        evaluate(spec_for(ninapro_root), out, progress=False, command=["test"], epoch_hook=stop_at)
    stop = (-1, -1)
    done = evaluate(spec_for(ninapro_root), out, progress=False, command=["test"], epoch_hook=stop_at)
    assert done.resumed
    assert (out / "results.json").read_bytes() == (reference_run / "results.json").read_bytes()
    assert (out / "seed-1" / "result.json").read_bytes() == (reference_run / "seed-1" / "result.json").read_bytes()
    sessions = json.loads((out / "manifest.json").read_text())["sessions"]
    assert [s["status"] for s in sessions] == ["interrupted", "interrupted", "finished"]
    assert sessions[1]["resumed_from"] == {"0": 1} and sessions[2]["resumed_from"] == {"1": 2}
    assert [r["epoch"] for r in read_log(out / "seed-1" / "log.jsonl")] == [0, 1, 2]


def test_a_run_directory_with_another_configuration_is_refused(reference_run: Path, ninapro_root: Path,
                                                               tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"different configuration \(protocol.epochs: 3 there, 4 now"):
        evaluate(spec_for(ninapro_root, epochs=4), reference_run, progress=False)
    (tmp_path / "stranger").mkdir()
    (tmp_path / "stranger" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not an nb360 evaluate run directory"):
        evaluate(spec_for(ninapro_root), tmp_path / "stranger", progress=False)


def test_a_corrupt_checkpoint_is_a_data_error_naming_it(ninapro_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"

    def stop(seed: int, epoch: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(spec_for(ninapro_root, seeds=(0,)), out, progress=False, epoch_hook=stop)
    checkpoint = out / "seed-0" / "checkpoints" / "last.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(DataError, match="cannot read the checkpoint .*last.pt.*delete it"):
        evaluate(spec_for(ninapro_root, seeds=(0,)), out, progress=False)


def test_backbones_and_dense_tasks(tmp_path: Path) -> None:
    """The 1D ResNet on SYNTHETIC Satellite files and an NB201 dense network on a tiny generated Darcy set."""
    from task_fixtures import build_satellite

    from nb360.data.darcy_generator import generate_darcyflow

    build_satellite(tmp_path / "satellite", n_train=30, n_test=6)
    sat = evaluate(EvalSpec(task="satellite", data_root=str(tmp_path / "satellite"), backbone="resnet1d", seeds=(0,),
                            epochs=1), tmp_path / "sat", progress=False)
    assert sat.results["model"]["backbone"] == "resnet1d" and sat.results["per_seed"][0]["test"]["error"] >= 0
    generate_darcyflow(tmp_path / "darcy", n_train=16, n_test=4, resolution=8, workers=1, progress=False)
    darcy = evaluate(EvalSpec(task="darcyflow", data_root=str(tmp_path / "darcy"), arch=ARCH, channels=2, cells=1,
                              seeds=(0,), epochs=1), tmp_path / "darcy-run", progress=False)
    test = darcy.results["per_seed"][0]["test"]
    assert test["reported"] == test["rel_l2"] > 0 and darcy.results["metric"]["name"] == "rel_l2"


# ----------------------------------------------------------------------------- CLI
def test_cli_evaluate_prints_the_table_and_where_the_run_is(ninapro_root: Path, tmp_path: Path) -> None:
    proc = run_cli("evaluate", "--task", "ninapro", "--arch", "1234", "--channels", "2", "--cells", "1",
                   "--data-root", str(ninapro_root), "--seeds", "0", "--epochs", "1", "--no-progress", "--threads", "1",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "SHORTENED from the card's 200" in proc.stdout and "WRN / default" in proc.stdout
    run_dirs = list((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 1 and f"results:       {Path('runs') / run_dirs[0].name / 'results.json'}" in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "bogus", "--backbone", "wrn"], "unknown task 'bogus'"),
    (["--task", "ninapro", "--backbone", "resnet1d"], "does not fit point2d task"),
    (["--task", "ninapro", "--arch", "99999"], "out of range"),
    (["--task", "ninapro", "--arch", "1", "--seeds", "0", "0"], "distinct"),
    (["--task", "ninapro", "--backbone", "wrn", "--data-root", "/nonexistent/nb360"], "nb360 data download ninapro"),
])
def test_cli_errors_are_one_line_with_exit_status_2(args: list[str], message: str, ninapro_root: Path,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from nb360.cli import main

    if "--data-root" not in args:
        args = [*args, "--data-root", str(ninapro_root)]
    assert main(["evaluate", *args, "--epochs", "1", "--no-progress", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.slow
def test_a_killed_cli_run_resumes_to_the_same_result(reference_run: Path, ninapro_root: Path, tmp_path: Path) -> None:
    """SIGKILL the CLI after its first checkpoint; the rerun resumes and ends with identical results."""
    out = tmp_path / "killed"
    args = ["evaluate", "--task", "ninapro", "--arch", ARCH, "--channels", "2", "--cells", "1", "--data-root",
            str(ninapro_root), "--seeds", "0", "1", "--epochs", "3", "--out", str(out), "--no-progress",
            "--threads", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "nb360", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    checkpoint = out / "seed-0" / "checkpoints" / "last.pt"
    while proc.poll() is None and not checkpoint.exists():
        time.sleep(0.05)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (out / "results.json").exists()
    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "results.json").read_bytes() == (reference_run / "results.json").read_bytes()


@pytest.mark.gpu
def test_a_cuda_run_records_the_gpu(ninapro_root: Path, tmp_path: Path) -> None:
    done = evaluate(spec_for(ninapro_root, seeds=(0,), epochs=1, device="cuda"), tmp_path / "gpu", progress=False)
    assert done.results["device_type"] == "cuda" and done.results["per_seed"][0]["test"]["error"] is not None
    env = json.loads((tmp_path / "gpu" / "manifest.json").read_text())["environment"]
    assert env["gpu"] and env["device"] == env["gpu"] and env["cuda"]
