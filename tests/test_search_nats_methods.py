"""GDAS, SETN, ENAS and random weight-sharing (AutoDL NATS-algos search-cell.py) on tiny supernets: update rules,
end-to-end runs on every task shape, resume; GAEA's update as gaea_release's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nb360.models import build_supernet  # noqa: E402
from nb360.models.supernet import Path as SupernetPath  # noqa: E402
from nb360.search.supernet import SupernetSearch, default_config, run_search  # noqa: E402
from nb360.search.supernet.config import METHOD_DEFAULTS, NATS_DEVIATIONS  # noqa: E402
from nb360.search.supernet.methods.enas import AGGREGATE, Controller  # noqa: E402
from nb360.search.supernet.methods.gdas import gumbel_hard_weights  # noqa: E402
from nb360.search.supernet.methods.setn import top_k_by_log_prob  # noqa: E402
from nb360.space import nb201  # noqa: E402

TINY = {"C": 2, "N": 1, "batch_size": 4, "epochs": 2, "max_steps": 2, "eval_candidates": 4, "eval_batch_size": 4,
        "controller_steps": 1, "eval_attacks": False}
NATS = ["gdas", "setn", "enas", "random-ws"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SYNTHETIC released-layout NinaPro (2D point) and Satellite (1D) fixtures, and a small generated Darcy set."""
    from task_fixtures import build_ninapro, build_satellite

    from nb360.data.darcy_generator import generate_darcyflow

    root = tmp_path_factory.mktemp("nats-data")
    build_ninapro(root / "ninapro", sizes=(12, 8, 4))
    build_satellite(root / "satellite", n_train=20, n_test=6)
    generate_darcyflow(root / "darcyflow", n_train=10, n_test=2, resolution=15, seed=0, workers=1, progress=False)
    return root


# ---------------------------------------------------------------------------------------------- update rules
def test_gdas_straight_through_forward_and_backward() -> None:
    """forward: only the sampled op runs on each edge, valued h_a·op_a(x) + Σ_{o≠a} h_o (= op_a(x)); backward: the
    gradient reaches every α through the straight-through weights, as AutoDL's forward_gdas computes it."""
    torch.manual_seed(0)
    net = build_supernet("ninapro", C=2, N=1, fused=False).eval()
    alpha = net.alpha
    seed = next(s for s in range(100)  # a sample without 'none', so x reaches every node
                if (gumbel_hard_weights(alpha, 5.0, torch.Generator().manual_seed(s))[1] != 0).all())
    hard, index = gumbel_hard_weights(alpha, 5.0, torch.Generator().manual_seed(seed))
    assert torch.equal(hard.detach(), torch.nn.functional.one_hot(index, 5).float())
    calls: list[tuple[int, int]] = []
    for c, cell in enumerate(net.search_cells()):
        for e, edge in enumerate(cell.edges):
            for o, op in enumerate(edge):
                op.register_forward_hook(lambda *_a, key=(e, o): calls.append(key))
    x = torch.randn(3, 1, 16, 52)
    out = net(x, SupernetPath(index, hard))
    assert sorted(set(calls)) == [(e, int(index[e])) for e in range(6)]  # no other op ran

    def reference_cell(cell, inp, weights):  # AutoDL NAS201SearchCell.forward_gdas, written out
        nodes = [inp]
        for target in range(1, 4):
            total = 0
            for e, (source, t) in enumerate(nb201.EDGES):
                if t == target:
                    a = int(index[e])
                    total = total + sum(weights[e, o] * cell.edges[e][o](nodes[source]) if o == a else weights[e, o]
                                        for o in range(5))
            nodes.append(total)
        return nodes[-1]

    def reference(inp, weights):
        feature = net.stem(inp)
        for cell in net.cells:
            feature = reference_cell(cell, feature, weights) if cell in net.search_cells() else cell(feature)
        from nb360.models.nb201 import classify

        return classify(net, net.lastact(feature))

    expected = reference(x, hard)
    torch.testing.assert_close(out, expected)
    grad_ours = torch.autograd.grad(out.square().sum(), alpha)[0]
    hard2, _ = gumbel_hard_weights(alpha, 5.0, torch.Generator().manual_seed(seed))
    grad_ref = torch.autograd.grad(reference(x, hard2).square().sum(), alpha)[0]
    torch.testing.assert_close(grad_ours, grad_ref)
    assert (grad_ours != 0).all()  # every op weight of every edge gets a gradient


def test_gdas_temperature_schedule(data_root: Path, tmp_path: Path) -> None:
    search = SupernetSearch(default_config("gdas", "ninapro", data_root=str(data_root), **{**TINY, "epochs": 3}),
                            tmp_path, progress=False)
    taus = []
    for epoch in range(3):
        search.method.start_epoch(epoch)
        taus.append(search.method.tau)
    assert taus == pytest.approx([10.0, 5.05, 0.1])


def test_enas_controller_reinforce_update_matches_the_reference_step() -> None:
    """One aggregated controller update: loss = -log p·(reward - baseline) / 20 per sample with reward = score +
    1e-4·entropy, baseline b - 0.01(b - reward) (or the score in the first epoch), clip 5, Adam."""
    from types import SimpleNamespace

    from nb360.search.supernet.methods import enas as enas_module

    for prev in (None, 0.4):
        torch.manual_seed(3)
        ours = Controller()
        ref = Controller()
        ref.load_state_dict(ours.state_dict())
        scores = iter(np.linspace(0.1, 0.9, AGGREGATE).tolist())
        fixed = list(np.linspace(0.1, 0.9, AGGREGATE))
        method = enas_module.EnasMethod.__new__(enas_module.EnasMethod)
        method.controller = ours
        method.a_opt = torch.optim.Adam(ours.parameters(), lr=1e-3, betas=(0.5, 0.999), eps=1e-3, weight_decay=0)
        method.baseline = prev
        engine = SimpleNamespace(config=SimpleNamespace(seed=0, controller_steps=1, eval_batch_size=2, batch_size=2),
                                 net=torch.nn.Linear(1, 1), device=torch.device("cpu"), arch_set=[(torch.zeros(1),
                                                                                                   0)] * 4)
        method.engine = engine
        original = enas_module.batch_score
        enas_module.batch_score = lambda *_a, **_k: next(scores)
        try:
            info = method.end_epoch(0)
        finally:
            enas_module.batch_score = original
        # the reference, written as search-cell.py's train_controller
        gen = enas_module.seeded(0, 0, 9)
        opt = torch.optim.Adam(ref.parameters(), lr=1e-3, betas=(0.5, 0.999), eps=1e-3, weight_decay=0)
        opt.zero_grad()
        baselines = []
        for k in range(AGGREGATE):
            log_prob, entropy, _ops, _ = ref(gen)
            score = torch.tensor(fixed[k])
            reward = score + 1e-4 * entropy
            baseline = score if prev is None else prev - 0.01 * (prev - reward)
            (-log_prob * (reward - baseline) / AGGREGATE).backward()
            baselines.append(float(baseline.detach()))
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 5.0)
        opt.step()
        assert info["controller"]["baseline"] == pytest.approx(np.mean(baselines))
        changed = False
        for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
            torch.testing.assert_close(a, b, msg=name)
        for a, b in zip(ours.parameters(), Controller().parameters()):
            changed |= not torch.equal(a, b)
        assert changed


def test_setn_candidates_are_the_most_likely_archs() -> None:
    rng = np.random.default_rng(0)
    log_probs = np.log(rng.dirichlet(np.ones(5), size=6))
    top = top_k_by_log_prob(log_probs, 7)
    scores = np.array([log_probs[np.arange(6), nb201.op_ids(i)].sum() for i in range(nb201.NUM_ARCHS)])
    assert [nb201.index_of(t) for t in top] == np.argsort(-scores, kind="stable")[:7].tolist()


def test_random_ws_paths_never_leave_a_node_with_only_none(data_root: Path, tmp_path: Path) -> None:
    search = SupernetSearch(default_config("random-ws", "ninapro", data_root=str(data_root), **TINY), tmp_path,
                            progress=False)
    search.method.start_epoch(0)
    rows = torch.cat([search.method.node_ops(50) for _ in range(4)])  # (200, 6)
    none = nb201.OPS.index("none")
    for target in (1, 2, 3):
        edges = [e for e, (_s, t) in enumerate(nb201.EDGES) if t == target]
        assert not (rows[:, edges] == none).all(dim=1).any()
    assert (rows[:, 0] != none).all()  # node 1 has one input: it is never 'none' (AutoDL's forward_urs)
    assert len({tuple(r) for r in rows.tolist()}) > 150  # and the cells' paths are drawn independently


# ---------------------------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("task", ["ninapro", "satellite", "darcyflow"])
@pytest.mark.parametrize("method", NATS)
def test_every_nats_method_searches_every_task_shape(method: str, task: str, data_root: Path, tmp_path: Path) -> None:
    cfg = default_config(method, task, data_root=str(data_root), **{**TINY, "epochs": 1})
    assert cfg.grad_clip is None and cfg.supernet_options == {"affine": False, "track_running_stats": False}
    result = run_search(cfg, tmp_path / "run", progress=False)
    assert result.finished and nb201.index_of(result.genotype) == result.arch_index
    epochs = [json.loads(line) for line in (tmp_path / "run" / "epochs.jsonl").read_text().splitlines()]
    assert epochs[-1]["genotype"] == result.genotype and np.array(epochs[-1]["arch_weights"]).shape == (6, 5)
    if method == "enas":
        assert epochs[-1]["controller"]["updates"] == 1
    assert result.evaluation["params_M"] > 0 and "clean" in result.evaluation["scores"]


@pytest.mark.parametrize("method", ["gdas", "enas"])
def test_resume_reaches_the_same_state(method: str, data_root: Path, tmp_path: Path) -> None:
    cfg = default_config(method, "ninapro", data_root=str(data_root), **TINY)
    straight = SupernetSearch(cfg, tmp_path / "straight", progress=False)
    straight.run()
    first = SupernetSearch(cfg, tmp_path / "resumed", progress=False)
    first.run(stop_after=1)
    second = SupernetSearch(cfg, tmp_path / "resumed", progress=False)
    result = second.run(resume=True)
    for (key, a), b in zip(straight.net.state_dict().items(), second.net.state_dict().values()):
        assert torch.equal(a, b), key
    if method == "enas":
        for a, b in zip(straight.method.controller.parameters(), second.method.controller.parameters()):
            assert torch.equal(a, b)
    assert result.genotype == straight.genotype()


def test_defaults_are_nats_and_deviations_are_named() -> None:
    gdas, enas = METHOD_DEFAULTS["gdas"], METHOD_DEFAULTS["enas"]
    assert (gdas["epochs"], gdas["lr"], gdas["lr_min"], gdas["weight_decay"], gdas["batch_size"]) == (
        100, 0.025, 0.001, 5e-4, 64)
    assert (gdas["arch_lr"], gdas["arch_weight_decay"], gdas["tau_max"], gdas["tau_min"]) == (3e-4, 1e-3, 10.0, 0.1)
    assert (enas["arch_lr"], enas["arch_weight_decay"], enas["arch_eps"]) == (1e-3, 0.0, 1e-3)
    assert "epochs" in NATS_DEVIATIONS


def test_gaea_update_is_gaea_releases(data_root: Path, tmp_path: Path) -> None:
    """p ← p·exp(-η∇p), then normalize = clamp(p, 1e-5) / Σ per edge (architect_edarts.py); weights: plain momentum."""
    cfg = default_config("gaea", "ninapro", data_root=str(data_root), C=2, N=1, batch_size=4, epochs=1, max_steps=1,
                         eval_attacks=False)
    assert cfg.nesterov is False
    search = SupernetSearch(cfg, tmp_path, progress=False)
    before = search.simplex.clone()
    batch = next(iter(torch.utils.data.DataLoader(search.arch_set, batch_size=4)))
    parts = before.clone().requires_grad_(True)
    from nb360.search.supernet.losses import batch_loss

    loss = batch_loss(search.arch_obj, lambda x: search.net(x, parts), batch, search.device)
    (grad,) = torch.autograd.grad(loss, parts)
    search.method.arch_step(batch, batch, 0.0, torch.Generator())
    expected = (before * torch.exp(-0.1 * grad)).clamp(min=1e-5)
    expected[:, nb201.OPS.index("none")] = 0.0
    expected = expected / expected.sum(dim=1, keepdim=True)
    torch.testing.assert_close(search.simplex, expected)
    from nb360.models.darts_search import DartsSupernet

    ops = torch.full((2, 14, 8), 0.125)
    edges = torch.tensor([[1e-9] * 14, [0.5] * 14])  # an edge weight below 1e-5 is not clamped (only the ops are)
    out = DartsSupernet.simplex_normalize([ops, edges])
    assert float(out[1][0, 0]) == pytest.approx(0.5, rel=1e-6) and float(out[1][0, 0]) != 0.0


@pytest.mark.parametrize("method", NATS)
def test_cli_runs_each_method(method: str, data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from nb360.cli import main

    out = tmp_path / method
    assert main(["search", "--method", method, "--task", "darcyflow", "--data-root", str(data_root), "--epochs", "1",
                 "--max-steps", "1", "--C", "2", "--N", "1", "--batch-size", "4", "--eval-candidates", "3",
                 "--eval-batch-size", "2", "--controller-steps", "1", "--tau-max", "5", "--no-attacks", "--out",
                 str(out), "--no-progress", "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert f"{method} on darcyflow (nb201 space): 1/1 epochs" in text and "found arch" in text
    config = json.loads((out / "config.json").read_text())
    assert config["eval_candidates"] == 3 and config["tau_max"] == 5 and config["grad_clip"] is None
