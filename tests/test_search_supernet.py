"""Weight-sharing search (DARTS, GAEA, E2RNAS) end to end on tiny tasks, resume, and the second-order step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from nb360.errors import DataError, InputError  # noqa: E402
from nb360.search.supernet import SupernetSearch, default_config, run_search  # noqa: E402
from nb360.search.supernet.objectives import ResourceObjective, constrained  # noqa: E402
from nb360.space import nb201  # noqa: E402

TINY = {"C": 2, "N": 1, "batch_size": 4, "epochs": 1, "max_steps": 2, "pgd_steps": 2}



@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SYNTHETIC released-layout NinaPro (2D) and Satellite (1D) fixtures, and a small generated Darcy Flow set."""
    from task_fixtures import build_ninapro, build_satellite

    from nb360.data.darcy_generator import generate_darcyflow

    root = tmp_path_factory.mktemp("search-data")
    build_ninapro(root / "ninapro", sizes=(12, 8, 4))
    build_satellite(root / "satellite", n_train=20, n_test=6)
    generate_darcyflow(root / "darcyflow", n_train=10, n_test=2, resolution=15, seed=0, workers=1, progress=False)
    return root


def tiny_config(method: str, task: str, root: Path, **overrides):
    return default_config(method, task, data_root=str(root), **{**TINY, **overrides})


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("task", ["darcyflow", "ninapro", "satellite"])
@pytest.mark.parametrize("method", ["darts", "gaea", "e2rnas"])
def test_one_short_epoch_end_to_end(method: str, task: str, data_root: Path, tmp_path: Path) -> None:
    compare = method == "e2rnas" and task == "ninapro"
    cfg = tiny_config(method, task, data_root, compare_darts=compare)
    result = run_search(cfg, tmp_path / "run", progress=False)
    assert result.finished and result.epochs_done == 1
    assert nb201.index_of(result.genotype) == result.arch_index
    if method == "gaea":
        assert "none" not in nb201.ops(result.genotype)  # GAEA excludes the zero op
    run = tmp_path / "run"
    for name in ("config.json", "checkpoint.pt", "steps.jsonl", "epochs.jsonl", "lambda.csv", "genotype.json",
                 "result.json", "plots/lambda.png", "plots/objectives.png"):
        assert (run / name).exists(), name
    steps = read_jsonl(run / "steps.jsonl")
    assert [s["step"] for s in steps] == [1, 2]
    names = ["acc", "adv", "size"] if method == "e2rnas" else ["acc"]
    for s in steps:
        assert list(s["objectives"]) == names and list(s["lambda"]) == names
        assert all(np.isfinite(v) for v in s["objectives"].values())
        lam = np.array(list(s["lambda"].values()))
        if method == "e2rnas":  # MGDA weights on the simplex (+1e-7 each)
            assert lam.min() > 0 and lam.sum() == pytest.approx(1 + 3e-7, abs=1e-6)
    epochs = read_jsonl(run / "epochs.jsonl")
    assert len(epochs) == 1 and epochs[0]["genotype"] == result.genotype
    weights = np.array(epochs[0]["arch_weights"])
    assert weights.shape == (6, 5) and weights.sum(1) == pytest.approx(np.ones(6), abs=1e-5)
    scores = result.evaluation["scores"]
    assert set(scores) == {"clean", "fgsm", "pgd"}
    if task == "darcyflow":
        assert "rel_l2" in scores["clean"]
    else:
        assert 0 <= scores["pgd"]["accuracy"] <= 100
    assert result.evaluation["params_M"] > 0
    if compare:
        assert (run / "plots" / "tradeoff.png").exists()
        saved = json.loads((run / "result.json").read_text())
        assert [p["label"] for p in saved["tradeoff"]] == ["E2RNAS", "DARTS"]
        assert (run / "darts-baseline" / "steps.jsonl").exists()


def state_of(search: SupernetSearch) -> dict[str, torch.Tensor]:
    state = {k: v.clone() for k, v in search.net.state_dict().items()}
    if search.simplex is not None:
        state["simplex"] = search.simplex.clone()
    return state


@pytest.mark.parametrize("method,extra", [("e2rnas", {"second_order": True}), ("gaea", {}), ("darts", {})])
def test_resume_reaches_the_same_state(method: str, extra: dict, data_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(method, "ninapro", data_root, epochs=2, eval_attacks=False, **extra)
    straight = SupernetSearch(cfg, tmp_path / "straight", progress=False)
    straight.run()
    first = SupernetSearch(cfg, tmp_path / "resumed", progress=False)
    stopped = first.run(stop_after=1)
    assert not stopped.finished and stopped.epochs_done == 1
    second = SupernetSearch(cfg, tmp_path / "resumed", progress=False)  # a fresh process would do exactly this
    second.run(resume=True)
    a, b = state_of(straight), state_of(second)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert read_jsonl(tmp_path / "straight" / "steps.jsonl") == read_jsonl(tmp_path / "resumed" / "steps.jsonl")
    assert len(read_jsonl(tmp_path / "resumed" / "epochs.jsonl")) == 2


def test_resume_refuses_changed_settings_and_missing_checkpoints(data_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config("darts", "ninapro", data_root, eval_attacks=False)
    SupernetSearch(cfg, tmp_path / "run", progress=False).run()
    with pytest.raises(InputError, match="already holds"):
        SupernetSearch(cfg, tmp_path / "run", progress=False).run()
    changed = tiny_config("darts", "ninapro", data_root, eval_attacks=False, arch_lr=1e-2)
    with pytest.raises(InputError, match="arch_lr"):
        SupernetSearch(changed, tmp_path / "run", progress=False).run(resume=True)
    with pytest.raises(DataError, match="no checkpoint"):
        SupernetSearch(cfg, tmp_path / "empty", progress=False).run(resume=True)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a readable"):
        SupernetSearch(cfg, tmp_path / "bad", progress=False).run(resume=True)


# ---------------------------------------------------------------------------------------------- the steps
def test_second_order_step_matches_the_exact_hypergradient(data_root: Path, tmp_path: Path) -> None:
    """With momentum and weight decay off, DARTS's finite-difference step equals autograd's hypergradient.

    DARTS's radius r = 0.01 is an approximation for ReLU networks (kinks inside the radius); with a tiny
    radius in float64 the central difference must match the exact Hessian-vector product.
    """
    # The reference below differentiates twice (create_graph), so the plain-PyTorch cell path is used.
    cfg = tiny_config("darts", "ninapro", data_root, second_order=True, momentum=0.0, nesterov=False,
                      weight_decay=0.0, supernet_options={"fused": False})
    search = SupernetSearch(cfg, tmp_path / "run", progress=False)
    search.net.double()
    search.hessian_r = 1e-7
    gen = torch.Generator().manual_seed(0)
    x_t, y_t = torch.randn(4, 1, 16, 52, generator=gen, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    x_v, y_v = torch.randn(4, 1, 16, 52, generator=gen, dtype=torch.float64), torch.tensor([4, 5, 6, 7])
    xi = 0.05
    captured = {}
    search.a_opt.step = lambda: captured.setdefault("grad", search.net.alpha.grad.clone())  # type: ignore[method-assign]
    search.arch_step((x_t, y_t), (x_v, y_v), xi, gen)

    from torch.func import functional_call

    named = {n: p for n, p in search.net.named_parameters() if n != "alpha"}
    alpha = search.net.alpha
    buffers = {n: b.clone() for n, b in search.net.named_buffers()}
    train_loss = nn.functional.cross_entropy(functional_call(search.net, {**named, **buffers}, (x_t,)), y_t)
    grads = torch.autograd.grad(train_loss, list(named.values()), create_graph=True)
    unrolled = {n: p - xi * g for (n, p), g in zip(named.items(), grads)}
    val_loss = nn.functional.cross_entropy(functional_call(search.net, {**unrolled, **buffers}, (x_v,)), y_v)
    (exact,) = torch.autograd.grad(val_loss, alpha)
    assert captured["grad"] == pytest.approx(exact.detach(), rel=1e-5, abs=1e-9)


def test_gaea_keeps_the_weights_on_the_simplex(data_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config("gaea", "ninapro", data_root, eval_attacks=False, max_steps=3)
    search = SupernetSearch(cfg, tmp_path / "run", progress=False)
    assert search.simplex is not None and search.simplex[:, 0].sum() == 0
    search.run()
    p = search.simplex
    assert p.sum(1) == pytest.approx(torch.ones(6), abs=1e-6) and (p[:, 0] == 0).all() and (p[:, 1:] >= 1e-6).all()
    assert not torch.allclose(p[:, 1:], torch.full((6, 4), 0.25))  # it moved


def test_mgda_off_and_objective_switches(data_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config("e2rnas", "ninapro", data_root, mgda=False, objectives=("acc", "size", "flops"),
                      eval_attacks=False)
    run_search(cfg, tmp_path / "run", progress=False)
    steps = read_jsonl(tmp_path / "run" / "steps.jsonl")
    assert all(s["lambda"] == {"acc": 1.0, "size": 1.0, "flops": 1.0} for s in steps)
    header = (tmp_path / "run" / "lambda.csv").read_text().splitlines()[0]
    assert header == "epoch,step,acc,size,flops"
    only_size = tiny_config("e2rnas", "ninapro", data_root, objectives=("size",), eval_attacks=False, max_steps=6,
                            arch_lr=0.05, size_constraint="none")
    search = SupernetSearch(only_size, tmp_path / "size", progress=False)
    before = float(search.resources["size"].value(search.net.arch_weights().detach()))
    search.run()
    after = float(search.resources["size"].value(search.net.arch_weights().detach()))
    assert after < before  # minimising the expected size alone shrinks it


def test_size_constraint_forms() -> None:
    value = torch.tensor([2.0, 5.0, 9.0], requires_grad=True)
    assert constrained(value, 5.0, "abs").tolist() == [3.0, 0.0, 4.0]
    assert constrained(value, 5.0, "min").tolist() == [3.0, 1.0, 1.0]  # only below target pushes (floor 1)
    assert constrained(value, 5.0, "max").tolist() == [1.0, 1.0, 4.0]
    assert constrained(value, 5.0, "none").tolist() == [2.0, 5.0, 9.0]
    (grad,) = torch.autograd.grad(constrained(value, 5.0, "min").sum(), value)
    assert grad.tolist() == [-1.0, 0.0, 0.0]
    with pytest.raises(InputError):
        constrained(value, 5.0, "both")


def test_default_size_target_is_the_midpoint(data_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config("e2rnas", "ninapro", data_root)
    search = SupernetSearch(cfg, tmp_path / "run", progress=False)
    size = search.resources["size"]
    low, high = ResourceObjective.range(size.cost)
    assert size.target == pytest.approx((low + high) / 2 / 1e5)
    assert size.cost.of("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") == pytest.approx(low)


def test_darcy_objectives_are_bound_per_split(data_root: Path) -> None:
    """Darcy's train targets are normalised and its val targets raw: each split's loss decodes accordingly."""
    from nb360.data import load
    from nb360.search.supernet.losses import batch_loss, split_objective
    from nb360.tasks import get_task

    card = get_task("darcyflow")
    splits = load("darcyflow", data_root, "search")
    train_obj, val_obj = split_objective(card, splits["train"]), split_objective(card, splits["val"])
    _, y = splits["val"][0]
    norm = splits["val"].y_normalizer
    pred = norm.encode(y[None])[:, None] * 1.1  # a normalised-space prediction (N, 1, H, W)
    expected = float((norm.decode(pred[:, 0]) - y[None]).norm() / y.norm())
    cpu = torch.device("cpu")
    assert float(batch_loss(val_obj, lambda _x: pred, (pred, y[None]), cpu)) == pytest.approx(expected, rel=1e-5)
    y_train = norm.encode(y[None])  # the same target as the train split stores it
    assert float(batch_loss(train_obj, lambda _x: pred, (pred, y_train), cpu)) == pytest.approx(expected, rel=1e-4)


def test_config_errors(data_root: Path) -> None:
    with pytest.raises(InputError, match="E2RNAS"):
        default_config("darts", "ninapro", objectives=("acc", "size"))
    with pytest.raises(InputError, match="first order"):
        default_config("gaea", "ninapro", second_order=True)
    with pytest.raises(InputError, match="objectives"):
        default_config("e2rnas", "ninapro", objectives=("acc", "latency"))
    with pytest.raises(InputError, match="method"):
        default_config("nao", "ninapro")
    with pytest.raises(InputError, match="NB201 space"):
        default_config("gdas", "ninapro", space="darts")
    with pytest.raises(InputError, match="data root"):
        SupernetSearch(default_config("darts", "ninapro", **TINY), "unused", progress=False)
    with pytest.raises(InputError, match="pixel normalisation"):
        SupernetSearch(tiny_config("e2rnas", "ninapro", data_root, eps_space="pixel"), "unused", progress=False)


def test_cli_search_and_resume(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from nb360.cli import main

    out = tmp_path / "cli"
    args = ["search", "--method", "e2rnas", "--task", "satellite", "--data-root", str(data_root), "--epochs", "2",
            "--max-steps", "1", "--C", "2", "--N", "1", "--batch-size", "4", "--objectives", "acc,size",
            "--no-compare-darts", "--no-attacks", "--out", str(out), "--no-progress", "--no-plots"]
    assert main([*args, "--stop-after", "1"]) == 0
    assert "continue with: nb360 search --resume" in capsys.readouterr().out
    assert main(["search", "--resume", str(out), "--no-progress", "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "2/2 epochs" in text and "found arch" in text
    assert len(read_jsonl(out / "steps.jsonl")) == 2
    assert main(["search", "--method", "darts", "--task", "satellite", "--objectives", "acc,size"]) == 2
    assert main(["search", "--method", "gaea"]) == 2


@pytest.mark.parametrize("grad_norm", ["l2", "loss"])
def test_mgda_sees_the_normalised_gradients(grad_norm: str, data_root: Path, tmp_path: Path, monkeypatch) -> None:
    """E2RNAS divides each objective's architecture gradient (by its L2 norm, or its loss) before MGDA."""
    from nb360.search.supernet.methods import e2rnas as engine  # where E2RNAS calls MGDA

    seen: list[list[float]] = []
    real = engine.min_norm_weights

    def spy(grads, **kwargs):
        seen.append([float(np.sqrt(sum(float((t.detach() ** 2).sum()) for t in (g if isinstance(g, list) else [g]))))
                     for g in grads])
        return real(grads, **kwargs)

    monkeypatch.setattr(engine, "min_norm_weights", spy)
    cfg = tiny_config("e2rnas", "ninapro", data_root, objectives=("acc", "size"), eval_attacks=False,
                      grad_norm=grad_norm, compare_darts=False)
    run_search(cfg, tmp_path / "run", progress=False)
    steps = [s for s in read_jsonl(tmp_path / "run" / "steps.jsonl") if s.get("grad_norm")]
    assert seen and len(seen) == len(steps)
    for norms, step in zip(seen, steps):
        raw = [step["grad_norm"][name] for name in ("acc", "size")]
        losses = [step["objectives"][name] for name in ("acc", "size")]
        expected = [1.0, 1.0] if grad_norm == "l2" else [r / abs(v) for r, v in zip(raw, losses)]
        assert norms == pytest.approx(expected, rel=1e-4), (norms, raw, losses)
        assert raw[0] != pytest.approx(raw[1], rel=1e-2)  # the raw scales differ, so the division matters
