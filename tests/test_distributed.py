"""Data-parallel training: 2 processes on the CPU (gloo) started by torchrun, through `fit` and `nb360 evaluate`.

Data are the SYNTHETIC NinaPro fixture files of tests/task_fixtures.py; the model is a tiny NB201 network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nb360.errors import InputError
from nb360.training import distributed

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"

# Runs in each torchrun process: `fit` directly (every rank dumps its final weights' hash and its
# records), then the evaluate workflow into RUN_DIR (optionally interrupted after seed 0's first epoch).
WORKER = r'''
import hashlib, json, sys
from pathlib import Path
import torch
from nb360.data import load
from nb360.evaluate import EvalSpec, evaluate
from nb360.models import build
from nb360.tasks import get_task
from nb360.training import TrainConfig, distributed, fit, objective_for, seed_everything

data_root, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
ARCH = "%s"
launch, device = distributed.init("cpu")
if mode == "fit":
    card = get_task("ninapro")
    sets = load("ninapro", data_root, "retrain")
    seed_everything(0)
    model = build(card, arch=ARCH, C=2, N=1)
    records = []
    fit(model, sets["train"], {"test": sets["test"]}, objective_for(card, sets["train"]),
        TrainConfig(epochs=2, batch_size=64, seed=0), device,
        on_epoch=lambda e, r: records.append({k: {q: v for q, v in r[k].items() if q != "time"}
                                              for k in ("train", "test") if k in r}))
    # parameters only: BN running statistics are per rank until DDP broadcasts rank 0's at the next forward
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
    (out / f"rank{launch.rank}.json").write_text(json.dumps({"weights": digest, "records": records,
                                                             "world": distributed.world_size()}))

def stop(seed, epoch):
    if mode == "interrupt" and (seed, epoch) == (0, 0):
        raise KeyboardInterrupt

spec = EvalSpec(task="ninapro", data_root=str(data_root), arch=ARCH, seeds=(0, 1), epochs=2, channels=2, cells=1)
try:
    evaluate(spec, out / "run", progress=False, command=["test"], epoch_hook=stop)
except KeyboardInterrupt:
    sys.exit(3)
finally:
    distributed.shutdown()
''' % ARCH


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from task_fixtures import build_ninapro

    tmp = tmp_path_factory.mktemp("ddp")
    build_ninapro(tmp / "ninapro", sizes=(150, 50, 16))
    script = tmp / "worker.py"
    script.write_text(WORKER)
    return tmp / "ninapro", script


def torchrun(script: Path, data: Path, out: Path, mode: str) -> subprocess.CompletedProcess:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(data), str(out), mode], capture_output=True, text=True, env=env,
                          timeout=300)


def test_launch_is_read_from_the_torchrun_environment() -> None:
    assert distributed.launch_from_env({}) == distributed.Launch(0, 1, 0)
    launch = distributed.launch_from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert launch.distributed and (launch.rank, launch.world_size, launch.local_rank) == (1, 2, 1)
    with pytest.raises(InputError, match="bad torchrun environment"):
        distributed.launch_from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(InputError, match="bad torchrun environment"):
        distributed.launch_from_env({"WORLD_SIZE": "two"})
    # a single process: every helper is the identity
    assert not distributed.is_active() and distributed.is_main()
    assert distributed.all_reduce_sum([1.0, 2.0], __import__("torch").device("cpu")) == [1.0, 2.0]
    assert distributed.all_gather("x") == ["x"] and distributed.broadcast(5) == 5


def test_a_batch_that_does_not_split_over_the_ranks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from nb360.training import TrainConfig
    from nb360.training.loop import _data_parallel

    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    with pytest.raises(InputError, match="batch size 128 does not split evenly over 3 processes"):
        _data_parallel(torch.nn.Linear(1, 1), list(range(10)), TrainConfig(epochs=1, batch_size=128),
                       torch.device("cpu"))


def test_two_gloo_processes_train_one_model_and_rank_0_writes_the_run(setup: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    data, script = setup
    proc = torchrun(script, data, tmp_path, "fit")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["weights"] == ranks[1]["weights"]  # DDP kept the replicas' parameters identical
    # training figures are summed over both ranks, so every rank reports the same; only rank 0 evaluates
    assert [r["train"] for r in ranks[0]["records"]] == [r["train"] for r in ranks[1]["records"]]
    assert all("test" in r for r in ranks[0]["records"]) and not any("test" in r for r in ranks[1]["records"])

    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    assert results["processes"] == 2 and results["seeds"] == [0, 1]
    manifest = json.loads((run / "manifest.json").read_text())
    assert [s["processes"] for s in manifest["sessions"]] == [2] and manifest["sessions"][0]["status"] == "finished"
    for seed in (0, 1):
        log = (run / f"seed-{seed}" / "log.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in log] == [0, 1]  # written once, by rank 0


@pytest.mark.slow
def test_an_interrupted_data_parallel_run_resumes_to_the_same_result(setup: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    data, script = setup
    whole = torchrun(script, data, tmp_path / "whole", "plain")
    assert whole.returncode == 0, whole.stderr[-3000:]
    first = torchrun(script, data, tmp_path / "parts", "interrupt")
    assert first.returncode != 0 and not (tmp_path / "parts" / "run" / "results.json").exists()
    second = torchrun(script, data, tmp_path / "parts", "plain")
    assert second.returncode == 0, second.stderr[-3000:]
    assert (tmp_path / "parts" / "run" / "results.json").read_bytes() == \
        (tmp_path / "whole" / "run" / "results.json").read_bytes()
    sessions = json.loads((tmp_path / "parts" / "run" / "manifest.json").read_text())["sessions"]
    assert sessions[-1]["resumed_from"] == {"0": 1}
