"""The MGDA min-norm solver against brute force (every face of the simplex enumerated, and a grid)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nb360.errors import InputError
from nb360.search.mgda import gradient_normalizers, gram_matrix, min_norm_2, min_norm_weights


def brute_force_min(M: np.ndarray) -> float:
    """min over the simplex of λᵀMλ: the minimum over every face of the face's KKT solution (exhaustive)."""
    T = len(M)
    best = np.inf
    for r in range(1, T + 1):
        for face in itertools.combinations(range(T), r):
            S = list(face)
            kkt = np.zeros((r + 1, r + 1))
            kkt[:r, :r] = 2 * M[np.ix_(S, S)]
            kkt[:r, r] = kkt[r, :r] = 1.0
            rhs = np.zeros(r + 1)
            rhs[r] = 1.0
            lam_s = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:r]
            if (lam_s >= -1e-12).all() and abs(lam_s.sum() - 1) < 1e-9:
                lam = np.zeros(T)
                lam[S] = np.clip(lam_s, 0, None)
                lam /= lam.sum()
                best = min(best, float(lam @ M @ lam))
    return best


def grid_min(M: np.ndarray, steps: int) -> float:
    """min of λᵀMλ over a grid of the simplex with spacing 1/steps."""
    T = len(M)
    best = np.inf
    for counts in itertools.product(range(steps + 1), repeat=T - 1):
        if sum(counts) <= steps:
            lam = np.array([*counts, steps - sum(counts)], dtype=float) / steps
            best = min(best, float(lam @ M @ lam))
    return best


def gradient_sets(seed: int, count: int):
    """Random gradient sets of 2-5 objectives, including parallel, opposite, identical and zero gradients."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        T = int(rng.integers(2, 6))
        G = rng.standard_normal((T, int(rng.integers(2, 30))))
        kind = k % 6
        if kind == 1:  # parallel (same direction, different length)
            G[1] = G[0] * rng.uniform(0.1, 3.0)
        elif kind == 2:  # opposite
            G[1] = -G[0] * rng.uniform(0.1, 3.0)
        elif kind == 3:  # identical
            G[-1] = G[0]
        elif kind == 4:  # one objective at a stationary point
            G[0] = 0.0
        elif kind == 5:  # L2-normalised, as E2RNAS feeds the solver
            G = G / np.linalg.norm(G, axis=1, keepdims=True)
        yield kind, G


@pytest.mark.parametrize("solver", ["fw", "pgd"])
def test_matches_brute_force_on_random_gradient_sets(solver: str) -> None:
    for kind, G in gradient_sets(0, 600):
        M = G @ G.T
        result = min_norm_weights(list(G), solver=solver, keep_all=False)
        lam = result.weights
        assert lam.shape == (len(G),)
        assert lam.min() >= 0 and abs(lam.sum() - 1) < 1e-12
        cost = float(lam @ M @ lam)
        assert cost == pytest.approx(result.cost, rel=1e-9, abs=1e-12)
        scale = max(float(M.diagonal().max()), 1e-12)
        # Frank-Wolfe with its fully-corrective step matches every face's exact minimiser to 1e-12, as the
        # module promises (without that step it stays up to 3e-3 off); Sener's PGD is held to 1e-9.
        tolerance = 1e-12 if solver == "fw" else 1e-9
        assert cost <= brute_force_min(M) + tolerance * scale, (kind, G)


def test_agrees_with_a_grid_search_for_three_objectives() -> None:
    for _, G in itertools.islice(gradient_sets(1, 200), 0, 200, 7):
        if len(G) != 3:
            continue
        M = G @ G.T
        cost = min_norm_weights(gram=M).cost
        # The grid is coarse: its minimum is an upper bound, within O(1/steps) of the true one.
        grid = grid_min(M, 120)
        assert cost <= grid + 1e-12
        assert cost >= grid - 0.05 * M.diagonal().max()


def test_opposite_gradients_are_pareto_stationary() -> None:
    g = np.array([1.0, -2.0, 0.5])
    result = min_norm_weights([g, -g])
    assert result.weights == pytest.approx([0.5, 0.5])
    assert result.cost == pytest.approx(0.0, abs=1e-15)
    result = min_norm_weights([g, -3 * g, np.array([0.0, 1.0, 0.0])])
    assert result.cost == pytest.approx(0.0, abs=1e-12)


def test_two_objective_rule_keeps_both_weighted() -> None:
    g1, g2 = np.array([1.0, 0.0]), np.array([2.0, 0.0])  # g1 dominates: <g1,g2> >= |g1|^2
    assert min_norm_weights([g1, g2]).weights == pytest.approx([0.999, 0.001])
    assert min_norm_weights([g1, g2], keep_all=False).weights == pytest.approx([1.0, 0.0])
    assert min_norm_weights([g2, g1]).weights == pytest.approx([0.001, 0.999])
    # g1 == g2 (zero denominator in the closed form): a finite answer on the simplex
    w = min_norm_weights([g1, g1.copy()]).weights
    assert np.isfinite(w).all() and w.sum() == pytest.approx(1.0)
    # orthogonal unit gradients: equal weights, exactly the closed form of Sener's Alg. 1
    gamma, cost = min_norm_2(1.0, 0.0, 1.0)
    assert (gamma, cost) == (0.5, 0.5)


def test_torch_gradients_and_the_gram_matrix() -> None:
    torch = pytest.importorskip("torch")
    grads = [[torch.tensor([[1.0, 2.0]]), torch.tensor([3.0])], [torch.tensor([[0.0, 1.0]]), torch.tensor([-1.0])]]
    M = gram_matrix(grads)
    assert M.dtype == np.float64
    assert M == pytest.approx(np.array([[14.0, -1.0], [-1.0, 2.0]]))
    w = min_norm_weights(grads).weights
    assert w == pytest.approx(min_norm_weights(gram=M).weights)


def test_iteration_cap_is_real() -> None:
    rng = np.random.default_rng(3)
    G = rng.standard_normal((5, 4))
    capped = min_norm_weights(list(G), max_iter=1)
    assert capped.iterations == 1
    full = min_norm_weights(list(G))
    assert full.converged and full.iterations <= 250
    assert full.cost <= capped.cost + 1e-12


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match="NaN"):
        min_norm_weights([np.array([1.0, np.nan]), np.array([0.0, 1.0])])
    with pytest.raises(InputError, match="same size"):
        min_norm_weights([np.ones(2), np.ones(3)])
    with pytest.raises(InputError, match="solver"):
        min_norm_weights([np.ones(2), np.ones(2), np.zeros(2)], solver="newton")
    with pytest.raises(InputError, match="exactly one"):
        min_norm_weights()


def test_gradient_normalizers() -> None:
    grads = [np.array([3.0, 4.0]), np.array([0.0, 2.0])]
    assert gradient_normalizers(grads, [2.0, 0.5], "l2") == pytest.approx([5.0, 2.0])
    assert gradient_normalizers(grads, [2.0, 0.5], "loss") == pytest.approx([2.0, 0.5])
    assert gradient_normalizers(grads, [2.0, 0.5], "loss+") == pytest.approx([10.0, 1.0])
    assert gradient_normalizers(grads, [2.0, 0.5], "none") == pytest.approx([1.0, 1.0])
    with pytest.raises(InputError):
        gradient_normalizers(grads, [1.0, 1.0], "max")
