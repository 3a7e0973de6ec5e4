"""BOHB's model against hpbandster (the config generator NATS's and NAS-Bench-360's bohb.py run) and statsmodels:
which budgets hold a model, the KDE bandwidths and densities, and the distribution of proposals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nb360.search.tabular.bohb import BohbModel, kde_parameters, kde_pdfs, select
from nb360.space import nb201

OPS = list(nb201.OPS)
BUDGETS = (12 / 9, 4.0, 12.0)


def _hpbandster():
    hp = pytest.importorskip("hpbandster.optimizers.config_generators.bohb")
    import ConfigSpace

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    cs = ConfigSpace.ConfigurationSpace(seed=0)
    for i in range(1, 4):  # NATS's get_topology_config_space
        for j in range(i):
            cs.add_hyperparameter(ConfigSpace.CategoricalHyperparameter(f"{i}<-{j}", OPS))
    return hp.BOHB(cs, num_samples=4, random_fraction=0.0, bandwidth_factor=3, min_bandwidth=0.3), cs


class _Job:
    def __init__(self, ops: np.ndarray, budget: float, loss: float) -> None:
        names = [f"{t}<-{s}" for s, t in nb201.EDGES]
        self.kwargs = {"config": {n: OPS[int(o)] for n, o in zip(names, ops)}, "budget": budget}
        self.result, self.exception, self.timestamps = {"loss": loss}, None, {}


def _results(seed: int, n: int) -> list[tuple[int, np.ndarray, float]]:
    """SYNTHETIC results: (budget level, ops, loss), losses tied to the ops so the good set has structure."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        level = int(rng.choice([0, 0, 1, 2]) if k < n // 2 else rng.choice([1, 2, 2]))
        ops = rng.integers(0, 5, 6)
        ops[rng.random(6) < 0.3] = 3  # some columns concentrate, some become constant in small subsets
        loss = float(100 - 10 * (ops == 3).sum() + rng.normal(0, 1))
        out.append((level, ops, loss))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_models_bandwidths_and_densities_equal_hpbandsters(seed: int) -> None:
    cg, _ = _hpbandster()
    ours = BohbModel(1, 3)
    rng = np.random.default_rng(100 + seed)
    checked = 0
    for level, ops, loss in _results(seed, 80):
        cg.new_result(_Job(ops, BUDGETS[level], loss))
        ours.observe(level, ops[None], np.array([loss]))
        stored = [len(cg.configs.get(b, [])) for b in BUDGETS]
        assert ours.count[:, 0].tolist() == stored  # the same results kept per budget (none below a bigger model)
        assert sorted(ours.model_level().tolist()) == [BUDGETS.index(max(cg.kde_models))] if cg.kde_models else [-1]
        level_m = int(ours.model_level()[0])
        if level_m < 0:
            continue
        good_kde = cg.kde_models[BUDGETS[level_m]]["good"]
        bad_kde = cg.kde_models[BUDGETS[level_m]]["bad"]
        digits, good, bad = ours.data(np.array([0]), np.array([level_m]))
        good_counts, bad_counts = ours.subset_counts(np.array([0]), np.array([level_m]), digits, good, bad)
        bw_good, t_good = kde_parameters(good_counts, 0.3)
        bw_bad, t_bad = kde_parameters(bad_counts, 0.3)
        np.testing.assert_allclose(bw_good[0], good_kde.bw, rtol=1e-12)
        np.testing.assert_allclose(bw_bad[0], bad_kde.bw, rtol=1e-12)
        points = rng.integers(0, 5, (1, 8, 6))
        points[0, :2] = digits[0, :, :2].T  # two good points themselves
        l_val, g_val = kde_pdfs(points, digits, good, bad, t_good, t_bad)
        with np.errstate(all="ignore"):
            l_ref = np.array([good_kde.pdf(p.astype(float)) for p in points[0]])
            g_ref = np.array([bad_kde.pdf(p.astype(float)) for p in points[0]])
        np.testing.assert_allclose(l_val[0], l_ref, rtol=1e-10, equal_nan=True)
        np.testing.assert_allclose(g_val[0], g_ref, rtol=1e-10, equal_nan=True)
        checked += 1
    assert checked > 20 and cg.kde_models  # models were built, at more than one budget along the way


def test_candidate_choice_follows_hpbandsters_loop() -> None:
    """max(1e-32, g)/max(l, 1e-32), a non-finite ratio with a finite l taken at once, NaN never chosen."""
    cands = np.arange(4 * 6).reshape(1, 4, 6)
    l_val = np.array([[1.0, 2.0, 0.5, 1.0]])
    g_val = np.array([[1.0, 1.0, 0.1, 5.0]])
    picked, ok = select(cands, l_val, g_val)
    assert ok[0] and picked[0].tolist() == cands[0, 2].tolist()  # ratios 1, 0.5, 0.2, 5
    picked, ok = select(cands, np.array([[1.0, 1.0, 1.0, 1.0]]), np.array([[2.0, np.inf, 0.1, 1.0]]))
    assert picked[0].tolist() == cands[0, 1].tolist()  # inf ratio with a finite l: taken, the loop stops
    picked, ok = select(cands, np.array([[np.nan] * 4]), np.array([[1.0] * 4]))
    assert not ok[0]  # no usable candidate: hpbandster falls back to a random configuration
    picked, ok = select(cands, np.array([[1e-40, 0.5, 0.5, 0.5]]), np.array([[np.nan, 1.0, 1.0, 1.0]]))
    assert picked[0].tolist() == cands[0, 0].tolist()  # NaN g counts as 1e-32, a tiny l as 1e-32: ratio 1


@pytest.mark.slow
def test_proposals_have_hpbandsters_distribution() -> None:
    """The same stored results; 600 proposals from hpbandster's get_config and 1500 from ours (one repeat each)."""
    cg, cs = _hpbandster()
    results = _results(7, 60)
    R = 600
    ours = BohbModel(R, 3)
    for level, ops, loss in results:
        cg.new_result(_Job(ops, BUDGETS[level], loss))
        ours.observe(level, np.repeat(ops[None], R, 0), np.full(R, loss))
    assert (ours.model_level() == BUDGETS.index(max(cg.kde_models))).all()
    np.random.seed(0)
    theirs = np.array([[OPS.index(cg.get_config(BUDGETS[0])[0][f"{t}<-{s}"]) for s, t in nb201.EDGES]
                       for _ in range(R)])
    mine = ours.sample(np.random.default_rng(0))
    from scipy.stats import chi2_contingency

    for e in range(6):  # per-edge op frequencies
        table = np.stack([np.bincount(theirs[:, e], minlength=5), np.bincount(mine[:, e], minlength=5)])
        table = table[:, table.sum(0) > 0]
        assert chi2_contingency(table)[1] > 0.001, (e, table)
    best = np.array([ops for _l, ops, _loss in sorted(results, key=lambda r: r[2])[:3]])
    for ref in best:  # how often a proposal is one of the best points exactly
        a, b = (theirs == ref).all(1).mean(), (mine == ref).all(1).mean()
        assert abs(a - b) < 4 * np.sqrt((a * (1 - a) + b * (1 - b)) / R) + 1e-3
