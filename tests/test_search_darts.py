"""The DARTS space end to end: DARTS, PC-DARTS, GAEA and E2RNAS searches, resume, and retraining a genotype.

Data are SYNTHETIC released-layout fixtures (tests/task_fixtures.py: NinaPro 2D, Satellite 1D) and a tiny
generated Darcy Flow set (dense); networks are tiny (C=4, 3 cells) and epochs 2 steps long.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nb360.errors import InputError  # noqa: E402
from nb360.evaluate import EvalSpec, darts_protocol, evaluate, train_config  # noqa: E402
from nb360.models import build, count_parameters_darts  # noqa: E402
from nb360.search.supernet import SupernetSearch, default_config, run_search  # noqa: E402
from nb360.space import darts  # noqa: E402
from nb360.tasks import get_task  # noqa: E402
from nb360.training.loop import TrainConfig, auxiliary_loss, fit, make_scheduler  # noqa: E402
from nb360.training.objectives import objective_for  # noqa: E402

TINY = {"C": 4, "layers": 3, "batch_size": 4, "epochs": 1, "max_steps": 2, "pgd_steps": 1, "eval_attacks": False,
        "size_net": {"C": 4, "layers": 5}}
PARTIAL = {"partial_channels": 2}  # PC-DARTS / GAEA: K=2 so that C/K stays even at C=4



@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SYNTHETIC NinaPro (2D) and Satellite (1D) fixtures and a small generated Darcy Flow set (dense)."""
    from task_fixtures import build_ninapro, build_satellite

    from nb360.data.darcy_generator import generate_darcyflow

    root = tmp_path_factory.mktemp("darts-data")
    build_ninapro(root / "ninapro", sizes=(12, 8, 4))
    build_satellite(root / "satellite", n_train=20, n_test=6)
    generate_darcyflow(root / "darcyflow", n_train=20, n_test=2, resolution=8, seed=0, workers=1, progress=False)
    return root


def tiny(method: str, task: str, root: Path, **overrides):
    extra = PARTIAL if method in ("pcdarts", "gaea") else {}
    return default_config(method, task, space="darts", data_root=str(root), **{**TINY, **extra, **overrides})


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------- settings
def test_darts_space_defaults_follow_the_references() -> None:
    gaea = default_config("gaea", "ninapro", space="darts")
    # NAS-Bench-360 darts/gaea/search/ninapro.yaml: batch 256, lr 0.1 -> 0, arch lr 0.1, C=16, 8 layers, 50 epochs
    assert (gaea.batch_size, gaea.lr, gaea.lr_min, gaea.arch_lr, gaea.C, gaea.layers, gaea.epochs) == \
        (256, 0.1, 0.0, 0.1, 16, 8, 50)
    assert gaea.partial_channels == 4 and gaea.edge_weights and gaea.warmup_epochs == 0
    assert gaea.arch_data == "train-half" and not gaea.nesterov and gaea.weight_decay == 3e-4
    pc = default_config("pcdarts", "cifar100", space="darts")
    assert (pc.arch_lr, pc.warmup_epochs, pc.lr_min, pc.batch_size, pc.second_order) == (6e-4, 15, 0.001, 256, False)
    d = default_config("darts", "darcyflow", space="darts")
    assert (d.lr, d.arch_lr, d.partial_channels, d.edge_weights, d.batch_size) == (0.025, 3e-4, 1, False, 4)
    e2 = default_config("e2rnas", "satellite", space="darts")  # full channels: DARTS's 64 (NB360 GAEA: 4096)
    assert e2.second_order and e2.objectives == ("acc", "adv", "size") and e2.batch_size == 64
    assert default_config("gaea", "satellite", space="darts").batch_size == 4096
    assert default_config("gaea", "psicov", space="darts").batch_size == 8
    # ECG: NAS-Bench-360 caps the search epoch at 20,000 records
    assert default_config("gaea", "ecg", space="darts").max_steps == math.ceil(20000 / 256)
    assert default_config("gaea", "ecg", space="darts", batch_size=64).max_steps == math.ceil(20000 / 64)
    with pytest.raises(InputError, match="--space darts"):
        default_config("pcdarts", "ninapro")
    with pytest.raises(InputError, match="DARTS space"):
        default_config("darts", "ninapro", partial_channels=4)
    with pytest.raises(InputError, match="partial channels K=4"):
        default_config("gaea", "ninapro", space="darts", C=6)
    with pytest.raises(InputError, match="unknown search space"):
        default_config("darts", "ninapro", space="nb301")


# ---------------------------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("task", ["ninapro", "darcyflow", "satellite"])
@pytest.mark.parametrize("method", ["darts", "pcdarts", "gaea", "e2rnas"])
def test_each_method_runs_one_short_epoch_end_to_end(method: str, task: str, data_root: Path, tmp_path: Path) -> None:
    extra: dict = {"warmup_epochs": 0} if method == "pcdarts" else {}
    if method == "e2rnas" and task == "ninapro":
        extra["eval_attacks"] = True  # score the found cell under FGSM/PGD once, with E2RNAS's second-order step
    elif method == "e2rnas":
        extra["second_order"] = False  # keeps the default test run short; the step itself is tested below
    cfg = tiny(method, task, data_root, **extra)
    plots = task == "ninapro"  # drawing costs ~1 s a run
    result = run_search(cfg, tmp_path / "run", progress=False, plots=plots)
    assert result.finished and result.epochs_done == 1 and result.arch_index is None
    genotype = darts.parse(result.genotype)
    run = tmp_path / "run"
    for name in ("config.json", "checkpoint.pt", "steps.jsonl", "epochs.jsonl", "lambda.csv", "genotype.json",
                 "result.json") + (("plots/lambda.png", "plots/train_loss.png") if plots else ()):
        assert (run / name).exists(), name
    steps = read_jsonl(run / "steps.jsonl")
    names = ["acc", "adv", "size"] if method == "e2rnas" else ["acc"]
    assert [s["step"] for s in steps] == [1, 2]
    for s in steps:
        assert list(s["objectives"]) == names and all(np.isfinite(v) for v in s["objectives"].values())
        if method == "e2rnas":  # MGDA weights on the simplex (+1e-7 each)
            assert sum(s["lambda"].values()) == pytest.approx(1 + 3e-7, abs=1e-6)
    (epoch,) = read_jsonl(run / "epochs.jsonl")
    assert darts.parse(epoch["genotype"]) == genotype
    ops = np.array(epoch["arch_weights"]["ops"])
    assert ops.shape == (2, 14, 8) and ops.sum(-1) == pytest.approx(np.ones((2, 14)), abs=1e-5)
    edges = epoch["arch_weights"]["edges"]
    if method in ("pcdarts", "gaea"):
        edges = np.array(edges)
        for target in range(2, 6):  # edge weights sum to 1 over each node's inputs
            assert edges[:, list(darts.node_edges(target))].sum(-1) == pytest.approx([1, 1], abs=1e-5)
    else:
        assert edges is None
    ev = result.evaluation
    card = get_task(task)
    # the reported size is that of the evaluation network of the genotype (here 5 cells, C=4)
    assert ev["params_M"] * 1e6 == pytest.approx(count_parameters_darts(build(card, genotype=genotype, C=4, layers=5)))
    assert "clean" in ev["scores"] and ("pgd" in ev["scores"]) == bool(extra.get("eval_attacks"))
    saved = json.loads((run / "genotype.json").read_text())
    assert saved["genotype"] == result.genotype and saved["arch_index"] is None


def test_gaea_updates_op_and_edge_weights_by_exponentiated_gradient(data_root: Path, tmp_path: Path) -> None:
    search = SupernetSearch(tiny("gaea", "satellite", data_root), tmp_path / "run", progress=False)
    ops, edges = search.simplex
    assert torch.equal(ops, torch.full_like(ops, 1 / 8))  # uniform start, no softmax parameters
    gen = torch.Generator().manual_seed(0)
    batch = (torch.randn(4, 1, 46, generator=gen), torch.tensor([0, 1, 2, 3]))
    parts = [p.clone().requires_grad_(True) for p in search.simplex]
    loss = torch.nn.functional.cross_entropy(search.net(batch[0], search.net.simplex_mix(parts)), batch[1])
    g_ops, g_edges = torch.autograd.grad(loss, parts)
    search.arch_step(batch, batch, 0.1, gen)
    p = ops * torch.exp(-0.1 * g_ops)  # p <- p exp(-lr grad), then per-edge / per-node renormalisation
    torch.testing.assert_close(search.simplex[0], p / p.sum(-1, keepdim=True))
    q = edges * torch.exp(-0.1 * g_edges)
    for target in range(2, 6):
        cols = list(darts.node_edges(target))
        torch.testing.assert_close(search.simplex[1][:, cols], q[:, cols] / q[:, cols].sum(-1, keepdim=True))


def test_pcdarts_warm_up_trains_weights_before_the_architecture(data_root: Path, tmp_path: Path) -> None:
    cfg = tiny("pcdarts", "satellite", data_root, epochs=2, warmup_epochs=1)
    search = SupernetSearch(cfg, tmp_path / "run", progress=False)
    alpha0, beta0 = search.net.alpha.detach().clone(), search.net.beta.detach().clone()
    search.run(stop_after=1)
    assert torch.equal(search.net.alpha, alpha0) and torch.equal(search.net.beta, beta0)  # no step in warm-up
    again = SupernetSearch(cfg, tmp_path / "run", progress=False)
    again.run(resume=True)
    assert not torch.equal(again.net.alpha, alpha0) and not torch.equal(again.net.beta, beta0)
    steps = read_jsonl(tmp_path / "run" / "steps.jsonl")
    assert [s.get("arch_step", True) for s in steps] == [False, False, True, True]
    assert steps[0]["lambda"] == {"acc": None} and list(steps[2]["objectives"]) == ["acc"]


@pytest.mark.parametrize("method,extra", [
    ("gaea", {}),
    pytest.param("e2rnas", {}, marks=pytest.mark.slow),  # second order, MGDA: ~14 s
    pytest.param("pcdarts", {"second_order": True, "warmup_epochs": 0}, marks=pytest.mark.slow),
])
def test_resume_reaches_the_same_state(method: str, extra: dict, data_root: Path, tmp_path: Path) -> None:
    cfg = tiny(method, "satellite", data_root, epochs=2, **extra)
    straight = SupernetSearch(cfg, tmp_path / "straight", progress=False)
    straight.run()
    SupernetSearch(cfg, tmp_path / "resumed", progress=False).run(stop_after=1)
    second = SupernetSearch(cfg, tmp_path / "resumed", progress=False)
    second.run(resume=True)

    def state(s: SupernetSearch) -> dict:
        out = {k: v.clone() for k, v in s.net.state_dict().items()}
        for i, p in enumerate(s.method.parts() if s.simplex is not None else []):
            out[f"simplex{i}"] = p.clone()
        return out

    a, b = state(straight), state(second)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert read_jsonl(tmp_path / "straight" / "steps.jsonl") == read_jsonl(tmp_path / "resumed" / "steps.jsonl")


def test_the_second_order_step_moves_alpha_and_the_edge_weights(data_root: Path, tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    batch = (torch.randn(4, 1, 46, generator=gen), torch.tensor([0, 1, 2, 3]))
    moved = {}
    for order in (False, True):
        cfg = tiny("pcdarts", "satellite", data_root, second_order=order, warmup_epochs=0)
        search = SupernetSearch(cfg, tmp_path / f"run-{order}", progress=False)
        before = [p.detach().clone() for p in search.net.arch_parameters()]
        search.arch_step(batch, batch, 0.1, torch.Generator().manual_seed(1))
        after = [p.detach().clone() for p in search.net.arch_parameters()]
        assert len(after) == 2 and all(not torch.equal(x, y) for x, y in zip(before, after))
        moved[order] = after
    assert not torch.equal(moved[False][0], moved[True][0])  # the Hessian term changes the step


# ---------------------------------------------------------------------------------------------- retraining
def test_the_nb360_protocol_of_a_genotype() -> None:
    fields, description = darts_protocol(get_task("ninapro"))
    assert (fields["epochs"], fields["batch_size"], fields["lr"], fields["weight_decay"], fields["grad_clip"]) == \
        (150, 128, 0.025, 3e-4, 5.0)
    assert fields["extras"]["lr_horizon_epochs"] == 600 and fields["extras"]["drop_path"] == \
        {"prob": 0.3, "horizon_epochs": 600}
    assert "auxiliary_weight" not in fields["extras"] and "ninapro.yaml" in description["source"]
    ecg, _ = darts_protocol(get_task("ecg"))
    assert ecg["batch_size"] == 64 and ecg["extras"]["lr_horizon_epochs"] == 150
    assert ecg["extras"]["drop_path"]["horizon_epochs"] == 150
    assert darts_protocol(get_task("cifar100"))[0]["extras"]["auxiliary_weight"] == 0.4
    darts_cifar, _ = darts_protocol(get_task("cifar100"), "darts")
    assert (darts_cifar["epochs"], darts_cifar["batch_size"], darts_cifar["extras"]["drop_path"]["prob"]) == \
        (600, 96, 0.2)
    # cosine annealing stepped per epoch over 600 epochs (NB360 trains 150 of them)
    cfg = train_config(fields, seed=0)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = make_scheduler(opt, cfg, steps_per_epoch=3)
    lrs = []
    for _ in range(3 * 150):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == lrs[2] == pytest.approx(0.025) and lrs[3] < lrs[2]
    assert lrs[3 * 149] == pytest.approx(0.025 * (1 + math.cos(math.pi * 149 / 600)) / 2)


def test_the_training_loop_adds_the_auxiliary_loss_and_ramps_drop_path() -> None:
    card = get_task("satellite")
    objective = objective_for(card)
    torch.manual_seed(0)
    net = build(card, genotype="DARTS_V1", C=4, layers=3, auxiliary=True).train()
    x, y = torch.randn(4, 1, 46), torch.tensor([0, 1, 2, 3])
    torch.manual_seed(1)
    loss, _ = auxiliary_loss(net, objective, (x, y), torch.device("cpu"), 0.4)
    torch.manual_seed(1)
    logits, aux = net(x)
    expected = torch.nn.functional.cross_entropy(logits, y) + 0.4 * torch.nn.functional.cross_entropy(aux, y)
    torch.testing.assert_close(loss, expected)
    seen = []
    cfg = TrainConfig(epochs=3, batch_size=4, lr=0.01, schedule="cosine",
                      extras={"drop_path": {"prob": 0.3, "horizon_epochs": 6}, "auxiliary_weight": 0.4})
    data = torch.utils.data.TensorDataset(torch.randn(8, 1, 46), torch.randint(0, 24, (8,)))
    fit(net, data, {}, objective, cfg, torch.device("cpu"), on_epoch=lambda e, r: seen.append(net.drop_path_prob))
    assert seen == pytest.approx([0.0, 0.05, 0.1])
    with pytest.raises(InputError, match="has no drop_path_prob"):
        fit(torch.nn.Linear(46, 24), data, {}, objective, cfg, torch.device("cpu"))


def test_a_genotype_retrains_and_resumes_bit_identically(data_root: Path, tmp_path: Path) -> None:
    # DARTS protocol on NinaPro: auxiliary head and drop-path both draw on the seeded RNG
    spec = EvalSpec(task="ninapro", data_root=str(data_root / "ninapro"), genotype="DARTS_V2", protocol="darts",
                    seeds=(0,), epochs=2, channels=4, layers=3)
    reference = evaluate(spec, tmp_path / "straight", progress=False, command=["test"])
    model = reference.results["model"]
    assert model["kind"] == "darts" and model["auxiliary"] and darts.parse(model["genotype"]) == darts.parse("DARTS_V2")
    assert model["params"] == count_parameters_darts(build(get_task("ninapro"), genotype="DARTS_V2", C=4, layers=3))
    assert reference.results["reference"]["comparable"]["method"] is None  # shortened: not comparable

    def stop(seed: int, epoch: int) -> None:
        if epoch == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(spec, tmp_path / "resumed", progress=False, command=["test"], epoch_hook=stop)
    done = evaluate(spec, tmp_path / "resumed", progress=False, command=["test"])
    assert done.resumed
    assert (tmp_path / "resumed" / "results.json").read_bytes() == (tmp_path / "straight" / "results.json").read_bytes()
    with pytest.raises(InputError, match="neither a genotype"):
        evaluate(EvalSpec(task="ninapro", data_root=str(data_root / "ninapro"), genotype="no/such/file.json"),
                 tmp_path / "bad", progress=False)


def test_cli_searches_the_darts_space_and_retrains_the_genotype(data_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "search"
    search = subprocess.run(
        [sys.executable, "-m", "nb360", "search", "--space", "darts", "--method", "gaea", "--task", "satellite",
         "--data-root", str(data_root), "--C", "4", "--layers", "3", "--partial-channels", "2", "--batch-size", "4",
         "--epochs", "1", "--max-steps", "1", "--no-attacks", "--no-progress", "--no-plots", "--threads", "1",
         "--out", str(run)], capture_output=True, text=True)
    assert search.returncode == 0, search.stderr
    assert "darts space" in search.stdout and "nb360 evaluate --task satellite --genotype" in search.stdout
    ev = subprocess.run(
        [sys.executable, "-m", "nb360", "evaluate", "--task", "satellite", "--genotype", str(run / "genotype.json"),
         "--data-root", str(data_root / "satellite"), "--seeds", "0", "--epochs", "1", "--channels", "4", "--layers",
         "3", "--no-progress", "--threads", "1", "--out", str(tmp_path / "eval")], capture_output=True, text=True)
    assert ev.returncode == 0, ev.stderr
    assert "DARTS network of Genotype(normal=" in ev.stdout
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    saved = json.loads((run / "genotype.json").read_text())["genotype"]
    assert darts.parse(results["model"]["genotype"]) == darts.parse(saved)
    bad = subprocess.run([sys.executable, "-m", "nb360", "search", "--method", "pcdarts", "--task", "satellite",
                          "--data-root", str(data_root)], capture_output=True, text=True)
    assert bad.returncode == 2 and "--space darts" in bad.stderr


# ----------------------------------------------------------------------------- E2RNAS: the authors' defaults
def test_e2rnas_defaults_are_the_authors(tmp_path: Path) -> None:
    import task_fixtures as fx

    from nb360.search.supernet import SupernetSearch
    from nb360.search.supernet.config import default_config

    nb201 = default_config("e2rnas", "ninapro")
    assert nb201.second_order and (nb201.eps, nb201.eps_space) == (None, "card")  # unrolled; the card's ε and unit
    cfg = default_config("e2rnas", "cifar10", space="darts")
    assert (cfg.second_order, cfg.arch_data, cfg.batch_size, cfg.weight_decay, cfg.arch_lr, cfg.epochs) == (
        True, "val", 64, 3e-4, 3e-4, 50)
    assert (cfg.grad_norm, cfg.size_constraint, cfg.adv_step, cfg.lower_level, cfg.mgda) == (
        "l2", "abs", 1.25, "clean", True)
    fx.build_cifar10(tmp_path, per_batch=2, n_test=2)
    engine = SupernetSearch(default_config("e2rnas", "cifar10", space="darts", data_root=str(tmp_path), C=4,
                                           layers=2), tmp_path / "run", progress=False)
    x = torch.zeros(1, 3, 4, 4)
    authors_std = torch.tensor([0.24703233, 0.24348505, 0.26158768]).view(1, 3, 1, 1)
    assert torch.allclose(engine.threat.scale(x, engine.threat.eps), (2 / 255) / authors_std)  # DARTS/train_search.py
    assert len(engine.train_set) == len(engine.arch_set) == 5  # train_portion 0.5 by index: the card's val split


def test_the_authors_size_proxy_equals_their_param_number() -> None:
    """size_proxy="supernet" against a direct transcription of the formula of E2RNAS's architect.param_number."""
    from types import SimpleNamespace

    from nb360.models import MixWeights
    from nb360.search.supernet.objectives import AUTHORS_SIZE_TARGET, ResourceObjective, supernet_size_proxy
    from nb360.tasks import get_task

    proxy = supernet_size_proxy(get_task("cifar10"), "darts", SimpleNamespace(C=16, layers=8))
    gen = torch.Generator().manual_seed(0)
    alpha = torch.randn(2, 14, 8, generator=gen, dtype=torch.float64)
    p = torch.softmax(alpha, dim=-1)

    def u(C: int, reduction: bool) -> torch.Tensor:  # per op, per edge (search-methods.md section 1.4)
        row = torch.tensor([0, 0, 0, 0, 2 * (C * C + 11 * C), 2 * (C * C + 27 * C), C * C + 11 * C, C * C + 27 * C],
                           dtype=torch.float64)
        table = row.repeat(14, 1)
        if reduction:
            for e in (0, 1, 2, 3, 5, 6, 9, 10):  # FactorizedReduce on the stride-2 skip edges
                table[e, 3] += C * C + 2 * C
        return table

    c_list, reductions = [16, 16, 32, 32, 32, 64, 64, 64], {2, 5}
    expected = sum((1.5 if i in reductions else 3.0) * (p[int(i in reductions)] * u(c, i in reductions)).sum()
                   for i, c in enumerate(c_list))
    assert float(proxy.expected(MixWeights(p))) == pytest.approx(float(expected), rel=1e-12)
    size = ResourceObjective.build("size", proxy, 1e5, AUTHORS_SIZE_TARGET, "abs")
    assert float(size(MixWeights(p))) == pytest.approx(abs(3.0 - float(expected) / 1e5), rel=1e-12)


def test_search_help_names_every_kept_deviation_from_the_authors() -> None:
    import re

    from nb360.search.supernet.methods.e2rnas import AUTHORS_DEVIATIONS

    proc = subprocess.run([sys.executable, "-m", "nb360", "search", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    text = re.sub(r"\s+", " ", proc.stdout)
    docs = re.sub(r"\s+", " ", (Path(__file__).resolve().parents[1] / "docs" / "e2rnas.md").read_text())
    for d in AUTHORS_DEVIATIONS:
        for needle in (f"{d.setting}: nb360", d.why[:40], d.theirs):
            assert needle in text, needle
        assert d.setting in docs and d.theirs in docs
