"""Tabular search (nb360.search.tabular) on built tables, the real NATS fixture and a partial table."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from nb360.errors import InputError
from nb360.search.tabular import ALGORITHMS, MULTI_FIDELITY, TabularProblem, budget_bounds, run
from nb360.search.tabular.algorithms import _Adam, _policy_gradient, _softmax
from nb360.space import nb201
from nb360.table import Table
from nb360.table.writer import RunData, write_table

METRICS = ["train-loss", "train-accuracy", "train-time", "ori-test-loss", "ori-test-accuracy", "ori-test-time"]
OP_SCORE = np.array([0.0, 0.4, 0.8, 1.2, 0.2])  # per-op contribution; gaps >= 0.2
OP_SECONDS = np.array([0.2, 0.3, 0.8, 1.6, 0.5])  # per-op train seconds per epoch


def _run(hp: str, epochs: int, seed: int, final: np.ndarray, noise: float, rng: np.random.Generator) -> RunData:
    """A SYNTHETIC run of all 15,625 archs: accuracy curves rising to `final` + noise, op-dependent times."""
    A = nb201.NUM_ARCHS
    ops = nb201.op_id_array()
    last = final + rng.normal(0, noise, A)
    shape = 1 - np.exp(-np.arange(1, epochs + 1) / (epochs / 4))
    acc = last[:, None] * shape[None, :] / shape[-1]
    train_time = 0.5 + OP_SECONDS[ops].sum(axis=1)
    curves = np.zeros((A, len(METRICS), epochs), dtype=np.float32)
    curves[:, 0] = 1.0 / (1 + np.arange(epochs))
    curves[:, 1] = np.minimum(acc + 5, 100)
    curves[:, 2] = train_time[:, None]
    curves[:, 3] = 2.0 - acc / 100
    curves[:, 4] = acc
    curves[:, 5] = 0.1
    return RunData(task="ninapro", hp=hp, seed=seed, metrics=list(METRICS), scalars=["params", "flops"],
                   arch_ids=np.arange(A), curves=curves, curves_present=np.ones(curves.shape, bool),
                   scalar_values=np.ones((A, 2)), scalars_present=np.ones((A, 2), bool), valid_split="ori-test",
                   time_kind="pseudo", protocol={"source": "SYNTHETIC test table"})


def build_structured_table(path: Path) -> Path:
    """A SYNTHETIC full-space table: accuracy additive in the ops (plus small noise), so the optimum is unique.

    hp '12' (two seeds, noisy, correlated with the final fidelity) and hp '36' (one seed, noise far below the
    op gaps, so every one-edge local optimum is the global one).
    """
    rng = np.random.default_rng(7)
    score = OP_SCORE[nb201.op_id_array()].sum(axis=1)
    final = 50 + 5 * score + rng.uniform(0, 0.01, nb201.NUM_ARCHS)
    runs = [_run("12", 12, 111, final - 10, 1.5, rng), _run("12", 12, 222, final - 10, 1.5, rng),
            _run("36", 36, 777, final, 0.0, rng)]
    return write_table(path, runs, archs=[nb201.arch_str(i) for i in range(nb201.NUM_ARCHS)],
                       provenance={"note": "SYNTHETIC structured table for tests"})


@pytest.fixture(scope="module")
def structured(structured_table_path: Path) -> Table:
    return Table.open(structured_table_path)


@pytest.fixture(scope="module")
def exact_problem(structured: Table) -> TabularProblem:
    """Search on the noiseless final fidelity itself: the table's optimum is the search optimum."""
    return TabularProblem.from_table(structured, search_hp="36")


@pytest.fixture(scope="module")
def proxy_problem(structured: Table) -> TabularProblem:
    return TabularProblem.from_table(structured)


def optimum(problem: TabularProblem) -> int:
    return int(np.nanargmax(problem.final_values))


# ---------------------------------------------------------------------------------------------- problem
def test_defaults_follow_nb360(proxy_problem: TabularProblem) -> None:
    p = proxy_problem
    assert (p.search_hp, p.search_epoch, p.search_metric) == ("12", 11, "ori-test-accuracy")
    assert (p.final_hp, p.final_metric) == ("36", "ori-test-accuracy")
    assert p.recorded.size == nb201.NUM_ARCHS


def test_query_cost_is_train_time_to_epoch_plus_eval(proxy_problem: TabularProblem, structured: Table) -> None:
    fid = proxy_problem.fidelity(3)
    arch = 1234
    for s, seed in enumerate(structured.seeds("12")):
        expected = sum(structured.query(arch, "train-time", e, seed=seed, hp="12") for e in range(4)) + 0.1
        assert fid.costs[s, arch] == pytest.approx(expected, rel=1e-6)
        assert fid.values[s, arch] == pytest.approx(structured.query(arch, "ori-test-accuracy", 3, seed=seed,
                                                                     hp="12"))
        value, cost, _ = structured.simulate_train_eval(arch, "12", 3, seed=seed)
        assert (fid.values[s, arch], fid.costs[s, arch]) == pytest.approx((value, cost), rel=1e-6)


def test_queries_match_real_nats_bench_on_the_released_fixture(fixture_table: Path) -> None:
    nats_bench = pytest.importorskip("nats_bench")
    from nats_records import FIXTURE_ARCHS, FIXTURE_DIR

    api = nats_bench.create(str(FIXTURE_DIR), "tss", fast_mode=True, verbose=False)
    problem = TabularProblem.from_table(str(fixture_table), task="cifar10-valid")
    assert (problem.search_hp, problem.search_metric, problem.final_metric) == ("12", "x-valid-accuracy",
                                                                                "ori-test-accuracy")
    fid = problem.fidelity(11)
    seeds = Table.open(fixture_table).seeds("12", "cifar10-valid")
    for arch in FIXTURE_ARCHS:
        pairs = set()
        for s, seed in enumerate(seeds):
            info = api.get_more_info(arch, "cifar10-valid", iepoch=11, hp="12", is_random=seed)
            assert fid.values[s, arch] == pytest.approx(info["valid-accuracy"], rel=1e-6)
            assert fid.costs[s, arch] == pytest.approx(info["train-all-time"] + info["valid-per-time"], rel=1e-6)
            pairs.add((round(fid.values[s, arch], 4), round(fid.costs[s, arch], 3)))
        random.seed(arch)
        acc, _, cost, _ = api.simulate_train_eval(arch, "cifar10", iepoch=11, hp="12")
        assert (round(acc, 4), round(cost, 3)) in pairs  # a random seed's (value, cost), as ours draws
        final = api.get_more_info(arch, "cifar10-valid", hp="200", is_random=False)["test-accuracy"]
        assert problem.final_values[arch] == pytest.approx(final, rel=1e-6)


# ---------------------------------------------------------------------------------------------- budget and logs
@pytest.mark.parametrize("protocol", ["nb360", "nb201"])
@pytest.mark.parametrize("method", sorted(ALGORITHMS))
def test_every_method_respects_the_budget_and_logs_real_values(method: str, protocol: str,
                                                               proxy_problem: TabularProblem,
                                                               structured: Table) -> None:
    budget = 1500.0
    options = {"iterations": 2} if method in MULTI_FIDELITY and protocol == "nb360" else {}
    result = run(method, proxy_problem, budget, repeats=7, seed=3, protocol=protocol, **options)
    assert result.repeats == 7 and (result.n_queries > 0).all() and result.config["protocol"] == protocol
    for r in range(7):
        n = int(result.n_queries[r])
        times, costs = result.times[r, :n], result.costs[r, :n]
        if not budget_bounds(method, protocol):  # NAS-Bench-360's Hyperband / BOHB: fixed iterations
            assert n == (13 + 4 if method != "sh" else 26) and result.config["iterations_run"] == 2
        elif protocol == "nb201":
            assert (times <= budget + 1e-9).all()  # the overrunning query is dropped
        else:  # NATS / NAS-Bench-360: every query counts, the one reaching the budget is the last
            assert (times[:-1] < budget).all() and times[-1] >= budget
        assert times == pytest.approx(np.cumsum(costs))
        archs, values, epochs = result.archs[r, :n], result.values[r, :n], result.epochs[r, :n]
        assert (archs >= 0).all() and (result.archs[r, n:] == -1).all()
        for a, v, e in zip(archs[:5], values[:5], epochs[:5]):
            recorded = {structured.query(int(a), "ori-test-accuracy", int(e), seed=s, hp="12") for s in (111, 222)}
            assert min(abs(v - x) for x in recorded) < 1e-4
        # incumbent: best value so far (nb201 multi-fidelity: best at the highest epoch so far)
        if method not in MULTI_FIDELITY or protocol == "nb360":
            assert result.incumbent_value[r, :n] == pytest.approx(np.maximum.accumulate(values))
        assert result.incumbent_final[r, n - 1] == pytest.approx(proxy_problem.final_values[result.incumbent_arch[r,
                                                                                                                n - 1]])


def test_results_are_reproducible(proxy_problem: TabularProblem) -> None:
    a = run("rea", proxy_problem, 2000, repeats=5, seed=11)
    b = run("rea", proxy_problem, 2000, repeats=5, seed=11)
    c = run("rea", proxy_problem, 2000, repeats=5, seed=12)
    assert np.array_equal(a.archs, b.archs) and np.array_equal(a.incumbent_final, b.incumbent_final, equal_nan=True)
    assert not np.array_equal(a.archs, c.archs)


# ---------------------------------------------------------------------------------------------- algorithms
def test_rea_finds_the_table_optimum_with_enough_budget(exact_problem: TabularProblem) -> None:
    best = optimum(exact_problem)
    rea = run("rea", exact_problem, budget=None, repeats=10, seed=0, max_queries=1500)
    found = rea.final()[0]
    assert (found == best).sum() >= 9
    rs = run("rs", exact_problem, budget=None, repeats=10, seed=0, max_queries=1500)
    assert (rs.final()[0] == best).sum() < (found == best).sum()  # evolution beats random sampling here


def test_rea_children_are_mutations_of_the_ageing_population(exact_problem: TabularProblem) -> None:
    P = 10
    result = run("rea", exact_problem, budget=None, repeats=4, seed=5, max_queries=60, population=P, sample_size=3)
    for r in range(4):
        archs = result.archs[r, :int(result.n_queries[r])]
        for q in range(P, len(archs)):
            population = archs[q - P:q]  # ageing: the population is always the last P queries
            assert any(archs[q] in nb201.neighbours(int(p)) for p in population)
    capped = run("rea", exact_problem, budget=None, repeats=3, seed=5, max_queries=500, cycles=7)
    assert (capped.n_queries == P + 7).all()


def test_local_search_reaches_the_unique_local_optimum(exact_problem: TabularProblem) -> None:
    result = run("ls", exact_problem, budget=None, repeats=6, seed=1, max_queries=400, num_init=5)
    assert (result.final()[0] == optimum(exact_problem)).all()
    for r in range(6):  # after the initial samples every query is a neighbour of an earlier query or a restart
        archs = result.archs[r, :int(result.n_queries[r])]
        reachable: set[int] = set()
        moves = 0
        for q, arch in enumerate(archs.tolist()):
            moves += q >= 5 and arch in reachable
            reachable.update(nb201.neighbours(arch))
        assert moves >= 0.9 * (len(archs) - 5)


def test_rea_mutation_follows_the_protocol(exact_problem: TabularProblem) -> None:
    """nb360: AutoDL's node-then-edge mutation (edge probabilities 1/3, 1/6, 1/6, 1/9, 1/9, 1/9); nb201: uniform."""
    rng = np.random.default_rng(0)
    parents = rng.integers(0, nb201.NUM_ARCHS, 60_000)
    for mutate, expected in ((exact_problem.mutate_by_node, [1 / 3, 1 / 6, 1 / 6, 1 / 9, 1 / 9, 1 / 9]),
                             (exact_problem.mutate, [1 / 6] * 6)):
        children = mutate(rng, parents)
        changed = exact_problem.op_ids[children] != exact_problem.op_ids[parents]
        assert (changed.sum(axis=1) == 1).all()  # exactly one edge, to a different op
        freq = changed.mean(axis=0)
        assert freq == pytest.approx(expected, abs=0.01)
        new_ops = exact_problem.op_ids[children][changed]
        assert np.bincount(new_ops, minlength=5) / len(new_ops) == pytest.approx([0.2] * 5, abs=0.01)


def test_reinforce_policy_improves(exact_problem: TabularProblem) -> None:
    result = run("reinforce", exact_problem, budget=None, repeats=20, seed=2, max_queries=300, learning_rate=0.05)
    early = np.nanmean(result.values[:, :30])
    late = np.nanmean(result.values[:, 270:300])
    assert late > early + 2.0


def test_numpy_adam_matches_torch_adam() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 6, 5))
    adam, ours = _Adam(start.shape, lr=0.1), start.copy()
    params = torch.tensor(start.copy(), requires_grad=True)
    opt = torch.optim.Adam([params], lr=0.1)
    for _ in range(5):
        grad = rng.standard_normal(start.shape)
        ours = adam.step(ours, grad, np.ones(3, dtype=bool))
        params.grad = torch.tensor(grad)
        opt.step()
        assert ours == pytest.approx(params.detach().numpy(), abs=1e-12)


def test_masked_repeats_do_not_step() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    adam, ours = _Adam((2, 6, 5), lr=0.5), np.zeros((2, 6, 5))
    g0, g1 = rng.standard_normal((2, 2, 6, 5))
    ours = adam.step(ours, g0, np.array([True, False]))
    assert (ours[1] == 0).all() and adam.t.tolist() == [1, 0]
    ours = adam.step(ours, g1, np.array([True, True]))
    params = torch.zeros(6, 5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([params], lr=0.5)
    params.grad = torch.tensor(g1[1])
    opt.step()  # repeat 1's first real step
    assert ours[1] == pytest.approx(params.detach().numpy(), abs=1e-12)


def test_policy_gradient_matches_autograd() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((4, 6, 5))
    actions = rng.integers(0, 5, (4, 6))
    advantage = rng.standard_normal(4)
    t = torch.tensor(logits, requires_grad=True)
    logp = torch.log_softmax(t, -1).gather(-1, torch.tensor(actions)[..., None]).squeeze(-1).sum(-1)
    (-(logp * torch.tensor(advantage)).sum()).backward()
    assert _policy_gradient(_softmax(logits), actions, advantage) == pytest.approx(t.grad.numpy(), abs=1e-12)


def test_hyperband_budgets_brackets_and_promotion(proxy_problem: TabularProblem) -> None:
    budgets, epochs = proxy_problem.fidelity_epochs(1, 12, 3)
    assert budgets == pytest.approx([12 / 9, 4, 12]) and epochs.tolist() == [0, 3, 11]
    result = run("hyperband", proxy_problem, budget=5000, repeats=3, seed=4, protocol="nb201")
    for r in range(3):
        n = int(result.n_queries[r])
        ep = result.epochs[r, :n].tolist()
        assert ep[:13] == [0] * 9 + [3] * 3 + [11]  # bracket s=2: 9 configs, the best 3, the best 1
        assert ep[13:17] == [3] * 3 + [11]  # bracket s=1
        rung0, rung1 = result.archs[r, :9], result.archs[r, 9:12]
        top3 = rung0[np.argsort(-result.values[r, :9], kind="stable")[:3]]
        assert sorted(rung1.tolist()) == sorted(top3.tolist())
        assert result.archs[r, 12] == rung1[np.argmax(result.values[r, 9:12])]
    sh = run("sh", proxy_problem, budget=5000, repeats=2, seed=4, protocol="nb201")
    assert sh.epochs[0, :26].tolist() == ([0] * 9 + [3] * 3 + [11]) * 2
    # nb360 (hpbandster as NAS-Bench-360 runs it): promoted configurations run in sampling order, every query counts
    hb = run("hyperband", proxy_problem, budget=None, repeats=3, seed=4, iterations=3)
    assert (hb.n_queries == 13 + 4 + 3).all() and hb.config["stops"].startswith("after the iterations")
    for r in range(3):
        rung0, rung1 = hb.archs[r, :9].tolist(), hb.archs[r, 9:12].tolist()
        assert rung1 == [a for a in rung0 if a in rung1]  # sampling order
        best = int(np.argmax(hb.values[r, :20]))
        assert hb.final()[0][r] == hb.archs[r, best]  # the best value at any fidelity


def test_vectorised_rea_matches_a_straightforward_loop(proxy_problem: TabularProblem, structured: Table) -> None:
    """The same algorithm written the reference way (one repeat at a time, Table.simulate_train_eval)."""
    budget, repeats = 1200.0, 150
    rng = random.Random(0)
    finals = []
    for _ in range(repeats):
        structured.reset_time()
        population, history, used = [], [], 0.0

        def evaluate(arch: int) -> float | None:
            nonlocal used
            value, cost, _ = structured.simulate_train_eval(arch, "12", 11, seed=rng.choice([111, 222]))
            if used + cost > budget:
                return None
            used += cost
            return value

        while len(population) < 10:
            arch = nb201.sample(rng)
            value = evaluate(arch)
            if value is None:
                break
            population.append((arch, value))
            history.append((arch, value))
        while len(population) == 10:
            parent = max((rng.choice(population) for _ in range(3)), key=lambda m: m[1])
            child = nb201.mutate(parent[0], rng)
            value = evaluate(child)
            if value is None:
                break
            population.append((child, value))
            history.append((child, value))
            population.pop(0)
        best = max(history, key=lambda m: m[1])[0]
        finals.append(proxy_problem.final_values[best])
    ours = run("rea", proxy_problem, budget, repeats=repeats, seed=0, protocol="nb201").final()[2]
    se = np.sqrt(np.var(finals) / repeats + np.var(ours) / repeats)
    assert abs(np.mean(ours) - np.mean(finals)) < 4 * se


# ---------------------------------------------------------------------------------------------- other tables
@pytest.mark.parametrize("method", sorted(ALGORITHMS))
def test_partial_table_queries_only_recorded_archs(method: str, nb360_layout_table) -> None:
    _, path = nb360_layout_table
    problem = TabularProblem.from_table(str(path))
    assert problem.recorded.size == 40 and (problem.search_hp, problem.final_hp) == ("200", "200")
    result = run(method, problem, budget=5000.0, repeats=4, seed=0)
    queried = result.archs[result.archs >= 0]
    assert set(queried.tolist()) <= set(problem.recorded.tolist())
    assert result.final()[2] == pytest.approx(problem.final_values[result.final()[0]])


def test_fixture_table_search(fixture_table: Path) -> None:
    problem = TabularProblem.from_table(str(fixture_table), task="cifar100")
    result = run("rea", problem, budget=3e4, repeats=5, seed=0)
    assert set(result.final()[0].tolist()) <= {0, 11, 284}
    assert problem.final_metric == "x-test-accuracy"


def test_bad_input(proxy_problem: TabularProblem, structured: Table) -> None:
    with pytest.raises(InputError, match="unknown tabular search method"):
        run("smac", proxy_problem, 100)
    with pytest.raises(InputError, match="unknown search protocol"):
        run("rs", proxy_problem, 100, protocol="nb101")
    with pytest.raises(InputError, match="smaller than the cost of a single query"):
        run("rs", proxy_problem, 0.01, protocol="nb201")
    with pytest.raises(InputError, match="budget"):
        run("rs", proxy_problem, None)
    with pytest.raises(InputError, match="not recorded"):
        TabularProblem.from_table(structured, search_metric="x-valid-accuracy")
    with pytest.raises(InputError, match="hp"):
        TabularProblem.from_table(structured, search_hp="200")
    with pytest.raises(InputError, match="population"):
        run("rea", proxy_problem, 100, population=0)


# ---------------------------------------------------------------------------------------------- run directory, CLI
def test_cli_writes_a_run_directory(structured: Table, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from nb360.cli import main

    out = tmp_path / "run"
    code = main(["search", "--method", "rea", "--table", structured.path, "--budget", "800", "--repeats", "6",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "rea on ninapro" in text and str(out) in text
    for name in ("config.json", "queries.csv", "genotype.json", "trajectory.csv", "summary.json",
                 "plots/trajectory.png"):
        assert (out / name).exists(), name
    rows = (out / "queries.csv").read_text().splitlines()
    assert rows[0].startswith("repeat,query,time") and len(rows) > 6
    assert main(["search", "--method", "rea", "--table", structured.path, "--budget", "800", "--out",
                 str(out), "--no-progress"]) == 2  # refuses to overwrite
    assert main(["search", "--method", "rea", "--table", structured.path, "--out", str(tmp_path / "x")]) == 2
    # no --table: the embedded table, as `nb360 run` searches, said on stderr
    assert main(["search", "--method", "rea", "--budget", "60", "--repeats", "1", "--no-plots", "--no-progress",
                 "--out", str(tmp_path / "embedded")]) == 0
    captured = capsys.readouterr()
    assert "no --table: searching the embedded Darcy Flow table" in captured.err
    assert "rea on darcyflow" in captured.out and "found: |" in captured.out
    # the embedded table has 3 seeds: the output says the final metric is one seed's under the nb360 protocol
    assert "one of its 3 seeds drawn per returned arch" in captured.out
    assert (tmp_path / "embedded" / "summary.json").exists()


def test_a_budget_far_beyond_the_table_is_refused_with_the_largest_sensible_one() -> None:
    from nb360.table.embedded import embedded_table_path

    problem = TabularProblem.from_table(embedded_table_path())
    with pytest.raises(InputError, match=r"queries per repeat .* use a budget up to [\d,]+ s, or bound the search "
                                         r"with --max-queries"):
        run("rea", problem, 1e9, repeats=2)
    assert run("rs", problem, 1e9, repeats=2, max_queries=3).summary()["queries_mean"] == 3  # capped: allowed


def test_cli_refuses_options_of_the_other_kind_of_search_and_resuming_a_tabular_run(tmp_path, capsys) -> None:
    from nb360.cli import main
    from nb360.table.embedded import embedded_table_path

    table = str(embedded_table_path())
    assert main(["search", "--method", "rea", "--table", table, "--budget", "50", "--epochs", "3",
                 "--out", str(tmp_path / "a")]) == 2
    assert "--epochs only applies to weight-sharing searches, not to rea" in capsys.readouterr().err
    assert main(["search", "--method", "e2rnas", "--task", "darcyflow", "--table", table, "--out",
                 str(tmp_path / "b")]) == 2
    assert "--table only applies to tabular searches" in capsys.readouterr().err
    run_dir = tmp_path / "c"
    assert main(["search", "--method", "rs", "--table", table, "--max-queries", "3", "--no-progress", "--no-plots",
                 "--out", str(run_dir)]) == 0
    capsys.readouterr()
    assert main(["search", "--resume", str(run_dir)]) == 2
    assert "holds a tabular search (rs): only weight-sharing searches resume" in capsys.readouterr().err
    assert main(["search", "--method", "rs", "--table", table, "--max-queries", "3", "--out", str(run_dir)]) == 2
    assert "tabular searches take seconds and are not resumed" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
